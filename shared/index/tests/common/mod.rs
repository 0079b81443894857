//! Synthetic clustered page vectors for tests and the benchmark.
//!
//! Uniform random vectors in high dimensions are all nearly orthogonal, so
//! HNSW recall on them does not predict recall on real embeddings. These vectors
//! are Gaussian blobs around random centres, L2-normalised, so each has a
//! clear neighbourhood like pages of the same form or letterhead.

#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Random cluster centres and the spread of points around them.
pub struct ClusteredVectors {
    pub dims: usize,
    /// Unit-norm centres stored row after row.
    centres: Vec<f32>,
    /// Norm of the Gaussian offset from the centre, relative to the centre's
    /// unit norm, before the point is normalised.
    spread: f32,
}

impl ClusteredVectors {
    pub fn new(dims: usize, clusters: usize, spread: f32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut centres = Vec::with_capacity(clusters * dims);
        for _ in 0..clusters {
            let centre = gaussian_vector(&mut rng, dims, 1.0);
            centres.extend(normalised(centre));
        }
        Self {
            dims,
            centres,
            spread,
        }
    }

    /// Draws `count` unit-norm vectors, each around a uniformly chosen centre,
    /// stored row after row.
    pub fn sample(&self, count: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let clusters = self.centres.len() / self.dims;
        let offset_scale = self.spread / (self.dims as f32).sqrt();
        let mut vectors = Vec::with_capacity(count * self.dims);
        for _ in 0..count {
            let cluster = rng.random_range(0..clusters);
            let centre = &self.centres[cluster * self.dims..(cluster + 1) * self.dims];
            let offset = gaussian_vector(&mut rng, self.dims, offset_scale);
            let point: Vec<f32> = centre.iter().zip(offset).map(|(c, o)| c + o).collect();
            vectors.extend(normalised(point));
        }
        vectors
    }
}

/// Pairs row `i` of `vectors` with key `i`.
pub fn keyed(vectors: &[f32], dims: usize) -> impl Iterator<Item = (u64, &[f32])> {
    vectors
        .chunks_exact(dims)
        .enumerate()
        .map(|(row, vector)| (row as u64, vector))
}

fn gaussian_vector(rng: &mut ChaCha8Rng, dims: usize, scale: f32) -> Vec<f32> {
    (0..dims)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
        .collect()
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    for x in &mut vector {
        *x /= norm;
    }
    vector
}
