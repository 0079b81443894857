//! PCA that keeps a share of the variance, by eigendecomposition of the covariance matrix.
//!
//! linfa-reduction 0.8 offers only a fixed number of components found by LOBPCG, so it cannot
//! pick the count from a variance share. The covariance matrix is `dims x dims` (2048 x 2048
//! for BiT), so its full eigendecomposition is cheap next to reading the pages.

use faer::{Mat, Side};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};

use crate::error::ClusterError;
use crate::linalg::{ROW_BLOCK, add_gram, multiply};

/// Fitted PCA: centre with `mean`, then multiply by `components`.
pub(crate) struct Pca {
    pub mean: Array1<f32>,
    /// `input_dims x kept_dims`, one unit column per component, largest variance first.
    pub components: Array2<f32>,
    /// Share of the total variance carried by the kept components.
    pub variance_kept: f64,
}

impl Pca {
    /// Fits on `points` (one row per page) and keeps the fewest components whose variance
    /// share exceeds `variance_share`, the rule scikit-learn uses for `PCA(n_components=0.98)`.
    pub fn fit(points: ArrayView2<'_, f32>, variance_share: f64) -> Result<Self, ClusterError> {
        let (rows, dims) = points.dim();

        let mut sums = vec![0.0_f64; dims];
        for row in points.rows() {
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum += f64::from(*value);
            }
        }
        let mean: Array1<f32> = sums.iter().map(|sum| (sum / rows as f64) as f32).collect();

        // Centre block by block before the product: subtracting n·mean·meanᵀ afterwards would
        // cancel most significant digits in f32.
        let mut gram = Array2::<f32>::zeros((dims, dims));
        for start in (0..rows).step_by(ROW_BLOCK) {
            let end = (start + ROW_BLOCK).min(rows);
            let mut block = points.slice(s![start..end, ..]).to_owned();
            block -= &mean;
            add_gram(&mut gram, &block.view());
        }

        let scale = 1.0 / (rows.max(2) - 1) as f64;
        let covariance = Mat::<f64>::from_fn(dims, dims, |i, j| f64::from(gram[[i, j]]) * scale);
        let eigen = covariance
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| ClusterError::PcaFailed { dims })?;
        let eigenvalues = eigen.S().column_vector();
        let eigenvectors = eigen.U();

        // faer sorts eigenvalues ascending; walk them from the largest.
        let descending: Vec<usize> = (0..dims).rev().collect();
        let variances: Vec<f64> = descending.iter().map(|&i| eigenvalues.get(i).max(0.0)).collect();
        let total: f64 = variances.iter().sum();

        let kept = if total <= 0.0 {
            1
        } else {
            let mut cumulative = 0.0;
            let mut count = dims;
            for (index, variance) in variances.iter().enumerate() {
                cumulative += variance;
                if cumulative / total > variance_share {
                    count = index + 1;
                    break;
                }
            }
            count
        };
        let variance_kept = if total <= 0.0 { 1.0 } else { variances[..kept].iter().sum::<f64>() / total };

        let mut components = Array2::<f32>::zeros((dims, kept));
        for (column, &source) in descending[..kept].iter().enumerate() {
            // Flip each eigenvector so its largest entry is positive, which fixes the sign the
            // eigensolver leaves free and keeps map coordinates stable between runs.
            let vector: Vec<f64> = (0..dims).map(|i| *eigenvectors.get(i, source)).collect();
            let largest = vector.iter().copied().fold(0.0_f64, |best, value| if value.abs() > best.abs() { value } else { best });
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            for (i, value) in vector.iter().enumerate() {
                components[[i, column]] = (value * sign) as f32;
            }
        }

        Ok(Self { mean, components, variance_kept })
    }

    pub fn kept_dims(&self) -> usize {
        self.components.ncols()
    }

    /// Projects `points` onto the kept components, block by block.
    pub fn project(&self, points: ArrayView2<'_, f32>) -> Array2<f32> {
        let rows = points.nrows();
        let mut projected = Array2::<f32>::zeros((rows, self.kept_dims()));
        for start in (0..rows).step_by(ROW_BLOCK) {
            let end = (start + ROW_BLOCK).min(rows);
            let mut block = points.slice(s![start..end, ..]).to_owned();
            block -= &self.mean;
            let block_projected = multiply(&block.view(), &self.components.view());
            projected.slice_mut(s![start..end, ..]).assign(&block_projected);
        }
        projected
    }
}

/// Copies the listed rows into a new standard-layout matrix.
pub(crate) fn gather_rows(points: ArrayView2<'_, f32>, rows: &[usize]) -> Array2<f32> {
    points.select(Axis(0), rows)
}
