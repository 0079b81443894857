//! Dense products through faer on row-major ndarray buffers, which ndarray's own `dot`
//! runs several times slower at these sizes.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2};

/// Rows handled per block, so that temporary copies stay small at any input size.
pub(crate) const ROW_BLOCK: usize = 4096;

pub(crate) fn parallelism() -> Par {
    Par::rayon(0)
}

/// Views a standard-layout ndarray matrix as a faer matrix.
pub(crate) fn as_faer<'a>(matrix: &'a ArrayView2<'_, f32>) -> MatRef<'a, f32> {
    let (rows, cols) = matrix.dim();
    let slice = matrix.as_slice().expect("matrix must be in standard (row-major) layout");
    MatRef::from_row_major_slice(slice, rows, cols)
}

pub(crate) fn as_faer_mut(matrix: &mut Array2<f32>) -> MatMut<'_, f32> {
    let (rows, cols) = matrix.dim();
    let slice = matrix.as_slice_mut().expect("matrix must be in standard (row-major) layout");
    MatMut::from_row_major_slice_mut(slice, rows, cols)
}

/// Returns `left · rightᵀ`, the dot products of every row of `left` with every row of `right`.
pub(crate) fn dot_rows(left: &ArrayView2<'_, f32>, right: &ArrayView2<'_, f32>) -> Array2<f32> {
    let mut product = Array2::<f32>::zeros((left.nrows(), right.nrows()));
    matmul(
        as_faer_mut(&mut product),
        Accum::Replace,
        as_faer(left),
        as_faer(right).transpose(),
        1.0,
        parallelism(),
    );
    product
}

/// Returns `left · right`.
pub(crate) fn multiply(left: &ArrayView2<'_, f32>, right: &ArrayView2<'_, f32>) -> Array2<f32> {
    let mut product = Array2::<f32>::zeros((left.nrows(), right.ncols()));
    matmul(
        as_faer_mut(&mut product),
        Accum::Replace,
        as_faer(left),
        as_faer(right),
        1.0,
        parallelism(),
    );
    product
}

/// Adds `blockᵀ · block` to `gram`.
pub(crate) fn add_gram(gram: &mut Array2<f32>, block: &ArrayView2<'_, f32>) {
    matmul(
        as_faer_mut(gram),
        Accum::Add,
        as_faer(block).transpose(),
        as_faer(block),
        1.0,
        parallelism(),
    );
}

/// Returns the squared L2 norm of each row.
pub(crate) fn squared_norms(matrix: &ArrayView2<'_, f32>) -> Vec<f32> {
    matrix.rows().into_iter().map(|row| row.dot(&row)).collect()
}
