//! Silhouette coefficients (Rousseeuw 1987) with Euclidean distances.

use ndarray::{ArrayView2, s};

use crate::linalg::{dot_rows, squared_norms};

const SILHOUETTE_BLOCK: usize = 1024;

/// Silhouette of each point, and the sum of its distances to the other members of its
/// cluster (used to pick medoids).
pub(crate) struct Silhouettes {
    pub values: Vec<f32>,
    pub intra_sums: Vec<f64>,
}

impl Silhouettes {
    pub fn mean(&self) -> f32 {
        if self.values.is_empty() {
            return 0.0;
        }
        (self.values.iter().map(|&v| f64::from(v)).sum::<f64>() / self.values.len() as f64) as f32
    }
}

/// Computes the silhouette of every point over all pairs, in blocks of rows.
///
/// A point alone in its cluster gets 0, as in scikit-learn. When every point is in one
/// cluster the silhouette is undefined, and every value is 0.
pub(crate) fn silhouettes(points: ArrayView2<'_, f32>, labels: &[u32], k: usize) -> Silhouettes {
    let rows = points.nrows();
    let points = points.as_standard_layout();
    let norms = squared_norms(&points.view());
    let mut counts = vec![0_usize; k];
    for &label in labels {
        counts[label as usize] += 1;
    }

    let mut values = Vec::with_capacity(rows);
    let mut intra_sums = Vec::with_capacity(rows);
    let mut sums = vec![0.0_f64; k];

    for start in (0..rows).step_by(SILHOUETTE_BLOCK) {
        let end = (start + SILHOUETTE_BLOCK).min(rows);
        let block = points.slice(s![start..end, ..]);
        let dots = dot_rows(&block, &points.view());

        for (offset, dot_row) in dots.rows().into_iter().enumerate() {
            let row = start + offset;
            sums.iter_mut().for_each(|sum| *sum = 0.0);
            for (other, dot) in dot_row.iter().enumerate() {
                if other == row {
                    continue;
                }
                let squared = (norms[row] + norms[other] - 2.0 * dot).max(0.0);
                sums[labels[other] as usize] += f64::from(squared.sqrt());
            }

            let own = labels[row] as usize;
            intra_sums.push(sums[own]);
            if counts[own] <= 1 {
                values.push(0.0);
                continue;
            }
            let a = sums[own] / (counts[own] - 1) as f64;
            let b = (0..k)
                .filter(|&cluster| cluster != own && counts[cluster] > 0)
                .map(|cluster| sums[cluster] / counts[cluster] as f64)
                .fold(f64::INFINITY, f64::min);
            let value = if b.is_infinite() || a.max(b) == 0.0 { 0.0 } else { (b - a) / a.max(b) };
            values.push(value as f32);
        }
    }
    Silhouettes { values, intra_sums }
}
