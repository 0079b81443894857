//! Input checks shared by the HNSW parts and the exact index.

use crate::IndexError;

/// Key that usearch 2.26.6 reserves to mark free slots (`u64::MAX`).
pub(crate) const RESERVED_KEY: u64 = u64::MAX;

/// Checks one stored vector and returns its L2 norm.
pub(crate) fn check_vector(key: u64, dims: usize, vector: &[f32]) -> Result<f32, IndexError> {
    if key == RESERVED_KEY {
        return Err(IndexError::ReservedKey { key });
    }
    if vector.len() != dims {
        return Err(IndexError::DimensionMismatch {
            key,
            expected: dims,
            actual: vector.len(),
        });
    }
    if let Some((dimension, &value)) = first_non_finite(vector) {
        return Err(IndexError::NonFiniteValue {
            key,
            dimension,
            value,
        });
    }
    let norm = l2_norm(vector);
    if norm == 0.0 {
        return Err(IndexError::ZeroVector { key });
    }
    Ok(norm)
}

/// Checks one query vector and returns its L2 norm.
pub(crate) fn check_query(dims: usize, query: &[f32]) -> Result<f32, IndexError> {
    if query.len() != dims {
        return Err(IndexError::QueryDimensionMismatch {
            expected: dims,
            actual: query.len(),
        });
    }
    if let Some((dimension, &value)) = first_non_finite(query) {
        return Err(IndexError::QueryNonFinite { dimension, value });
    }
    let norm = l2_norm(query);
    if norm == 0.0 {
        return Err(IndexError::QueryZeroVector);
    }
    Ok(norm)
}

pub(crate) fn check_dims(dims: usize) -> Result<(), IndexError> {
    if dims == 0 {
        return Err(IndexError::InvalidOption {
            field: "dims",
            value: "0".to_owned(),
            reason: "vectors need at least one dimension; BiT page vectors have 2048",
        });
    }
    Ok(())
}

fn first_non_finite(vector: &[f32]) -> Option<(usize, &f32)> {
    vector.iter().enumerate().find(|(_, value)| !value.is_finite())
}

/// Computes the L2 norm in f64 so that 2048 squared components do not lose
/// precision before the square root.
fn l2_norm(vector: &[f32]) -> f32 {
    let sum: f64 = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    sum.sqrt() as f32
}
