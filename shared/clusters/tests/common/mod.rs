//! Synthetic page vectors for the tests: Gaussian blobs around random unit centres,
//! L2-normalised like real embeddings.

#![allow(dead_code)]

use folio_clusters::PageRef;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Pages of one synthetic layout: `count` pages spread over documents of 2 pages each.
pub struct Blob {
    pub name: &'static str,
    pub count: usize,
}

/// Builds blobs in `dims` dimensions. Centres are random unit vectors (nearly orthogonal in
/// 64 dimensions); each point adds N(0, `spread`) per coordinate, then is normalised.
/// Returns pages, vectors and the blob index of each row.
pub fn blobs(blobs: &[Blob], dims: usize, spread: f32, seed: u64) -> (Vec<PageRef>, Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let standard = Normal::new(0.0_f32, 1.0).unwrap();
    let noise = Normal::new(0.0_f32, spread).unwrap();
    let total: usize = blobs.iter().map(|blob| blob.count).sum();

    let mut pages = Vec::with_capacity(total);
    let mut vectors = Array2::<f32>::zeros((total, dims));
    let mut truth = Vec::with_capacity(total);
    let mut row = 0;
    for (index, blob) in blobs.iter().enumerate() {
        let mut centre: Vec<f32> = (0..dims).map(|_| standard.sample(&mut rng)).collect();
        normalise(&mut centre);
        for member in 0..blob.count {
            let mut vector: Vec<f32> = centre.iter().map(|c| c + noise.sample(&mut rng)).collect();
            normalise(&mut vector);
            vectors.row_mut(row).assign(&ndarray::ArrayView1::from(&vector));
            pages.push(PageRef::new(format!("{}/doc-{:03}.tif", blob.name, member / 2), (member % 2) as u32 + 1));
            truth.push(index);
            row += 1;
        }
    }
    (pages, vectors, truth)
}

pub fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|v| *v /= norm);
}

/// Share of pages whose cluster's majority blob is their own blob.
pub fn purity(labels: &[u32], truth: &[usize]) -> f64 {
    let clusters = *labels.iter().max().unwrap() as usize + 1;
    let classes = *truth.iter().max().unwrap() + 1;
    let mut counts = vec![vec![0_usize; classes]; clusters];
    for (&label, &class) in labels.iter().zip(truth) {
        counts[label as usize][class] += 1;
    }
    let majority: usize = counts.iter().map(|row| *row.iter().max().unwrap()).sum();
    majority as f64 / labels.len() as f64
}

/// Returns whether every blob lies in exactly one cluster and every cluster contains one blob.
pub fn is_one_to_one(labels: &[u32], truth: &[usize]) -> bool {
    let mut pairs: Vec<(u32, usize)> = labels.iter().copied().zip(truth.iter().copied()).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let distinct_labels = pairs.iter().map(|p| p.0).collect::<std::collections::BTreeSet<_>>().len();
    let distinct_truth = pairs.iter().map(|p| p.1).collect::<std::collections::BTreeSet<_>>().len();
    pairs.len() == distinct_labels && pairs.len() == distinct_truth
}

pub fn four_blobs() -> Vec<Blob> {
    vec![
        Blob { name: "letters", count: 60 },
        Blob { name: "invoices", count: 50 },
        Blob { name: "faxes", count: 40 },
        Blob { name: "forms", count: 30 },
    ]
}

/// Creates an empty folder under the system temp folder, unique to this process and name.
pub fn fresh_folder(name: &str) -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("folio-clusters-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}
