//! Benchmark of PCA + k-means, run by `bench/clusters/run.sh` beside scikit-learn.
//!
//! - `bench_clusters generate ROWS PATH` writes synthetic clustered page vectors as a `.npy`
//!   file.
//! - `bench_clusters fit PATH K N_INIT` reads that file and runs PCA (0.98 of variance) and
//!   k-means on every row. It prints one JSON line with stage timings and peak memory (VmHWM).
//! - `bench_clusters summarise PATH` reads that file and runs `summarise` with the default
//!   parameters (the ones the indexer uses: sampling above 50 000 pages, k by silhouette). It
//!   prints one JSON line with the time, the peak memory and what the summary records about
//!   sampling.
//! - `bench_clusters map ROWS K PATH` generates ROWS vectors in memory, summarises them with
//!   k = K and writes the map PNG to PATH, to look at the map at a given page count.
//!
//! The vectors start from 16 random unit centres in 2048 dimensions. Each row adds a
//! variation in a fixed random 64-dimensional subspace (N(0, 0.05²) per latent coordinate)
//! and isotropic noise N(0, 0.001²), and is then L2-normalised.

use std::io::{BufReader, BufWriter, Read, Write};
use std::time::Instant;

use folio_clusters::{ClusterParams, KChoice, PageRef, SummaryIds, map_png, summarise};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const DIMS: usize = 2048;
const CENTRES: usize = 16;
const LATENT_DIMS: usize = 64;
const LATENT_SPREAD: f32 = 0.05;
const NOISE_SPREAD: f32 = 0.001;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") if args.len() == 4 => {
            let rows: usize = args[2].parse().expect("ROWS must be a positive integer");
            generate(rows, &args[3]);
        }
        Some("summarise") if args.len() == 3 => summarise_file(&args[2]),
        Some("map") if args.len() == 5 => {
            let rows: usize = args[2].parse().expect("ROWS must be a positive integer");
            let k: usize = args[3].parse().expect("K must be a positive integer");
            draw_map(rows, k, &args[4]);
        }
        Some("fit") if args.len() == 5 => {
            let k: usize = args[3].parse().expect("K must be a positive integer");
            let n_init: usize = args[4].parse().expect("N_INIT must be a positive integer");
            fit(&args[2], k, n_init);
        }
        _ => {
            eprintln!(
                "usage: bench_clusters generate ROWS PATH | fit PATH K N_INIT | summarise PATH | map ROWS K PATH"
            );
            std::process::exit(2);
        }
    }
}

fn generate(rows: usize, path: &str) {
    let vectors = synthetic_vectors(rows);
    write_npy(path, &vectors);
    println!("wrote {rows} x {DIMS} f32 to {path}");
}

fn synthetic_vectors(rows: usize) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let standard = Normal::new(0.0_f32, 1.0).unwrap();
    let random_matrix = |rows, cols, rng: &mut ChaCha8Rng| {
        Array2::from_shape_simple_fn((rows, cols), || standard.sample(rng))
    };

    let mut centres = random_matrix(CENTRES, DIMS, &mut rng);
    for mut centre in centres.rows_mut() {
        let norm = centre.dot(&centre).sqrt();
        centre /= norm;
    }
    // Orthonormal-ish basis of the variation subspace: random Gaussian columns scaled to unit
    // expected norm.
    let basis = random_matrix(LATENT_DIMS, DIMS, &mut rng) / (DIMS as f32).sqrt();

    let latent = random_matrix(rows, LATENT_DIMS, &mut rng) * LATENT_SPREAD;
    let mut vectors = latent.dot(&basis);
    let noise = Normal::new(0.0_f32, NOISE_SPREAD).unwrap();
    for (row, mut vector) in vectors.axis_iter_mut(Axis(0)).enumerate() {
        vector += &centres.row(row % CENTRES);
        vector.mapv_inplace(|value| value + noise.sample(&mut rng));
        let norm = vector.dot(&vector).sqrt();
        vector /= norm;
    }
    vectors
}

/// Document keys as long as real ones, three pages per document.
fn synthetic_pages(rows: usize) -> Vec<PageRef> {
    (0..rows).map(|row| PageRef::new(format!("bench/2026/12/document-{:08}.tif", row / 3), (row % 3) as u32 + 1)).collect()
}

fn summarise_file(path: &str) {
    let start = Instant::now();
    let vectors = read_npy(path);
    let pages = synthetic_pages(vectors.nrows());
    let load_seconds = start.elapsed().as_secs_f64();
    let loaded_mib = peak_memory_mib();

    let start = Instant::now();
    let ids = SummaryIds { model_id: "synthetic".into(), snapshot_id: "bench".into() };
    let run = summarise(&pages, vectors.view(), &ClusterParams::default(), &ids)
        .unwrap_or_else(|error| panic!("summarise failed: {error}"));
    let summarise_seconds = start.elapsed().as_secs_f64();
    let summary = &run.summary;
    println!(
        "{{\"impl\": \"folio-clusters summarise\", \"rows\": {}, \"load_s\": {:.3}, \"summarise_s\": {:.3}, \"peak_after_load_mib\": {:.0}, \"peak_mib\": {:.0}, \"sampled\": {}, \"sample_size\": {}, \"k\": {}, \"pca_dims\": {}, \"silhouette\": {:.4}, \"near_duplicates_computed\": {}}}",
        vectors.nrows(),
        load_seconds,
        summarise_seconds,
        loaded_mib,
        peak_memory_mib(),
        summary.sampled,
        summary.sample_size,
        summary.parameters.k,
        summary.parameters.pca_dims,
        summary.silhouette.overall,
        summary.near_duplicates.computed
    );
}

fn draw_map(rows: usize, k: usize, path: &str) {
    let vectors = synthetic_vectors(rows);
    let pages = synthetic_pages(rows);
    let params = ClusterParams { k: KChoice::Given { k }, ..ClusterParams::default() };
    let ids = SummaryIds { model_id: "synthetic".into(), snapshot_id: "bench".into() };
    let run = summarise(&pages, vectors.view(), &params, &ids).unwrap_or_else(|error| panic!("summarise failed: {error}"));
    let png = map_png(&run.summary, &run.map_points).unwrap_or_else(|error| panic!("map failed: {error}"));
    std::fs::write(path, png).unwrap_or_else(|error| panic!("cannot write {path}: {error}"));
    println!("wrote the map of {rows} pages in {} clusters to {path}", run.summary.clusters.len());
}

fn fit(path: &str, k: usize, n_init: usize) {
    let start = Instant::now();
    let vectors = read_npy(path);
    let load_seconds = start.elapsed().as_secs_f64();

    let timings = folio_clusters::benchmark::time_pca_then_kmeans(vectors.view(), 0.98, k, n_init, 0)
        .unwrap_or_else(|error| panic!("benchmark fit failed: {error}"));
    println!(
        "{{\"impl\": \"folio-clusters\", \"rows\": {}, \"load_s\": {:.3}, \"pca_s\": {:.3}, \"kmeans_s\": {:.3}, \"pca_dims\": {}, \"variance_kept\": {:.5}, \"inertia\": {:.6}, \"peak_mib\": {:.0}}}",
        vectors.nrows(),
        load_seconds,
        timings.pca_seconds,
        timings.kmeans_seconds,
        timings.pca_dims,
        timings.variance_kept,
        timings.inertia,
        peak_memory_mib()
    );
}

/// Peak resident memory of this process (VmHWM of /proc/self/status), in MiB.
fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Writes a little-endian f32 C-order `.npy` file (format version 1.0).
fn write_npy(path: &str, matrix: &Array2<f32>) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        matrix.nrows(),
        matrix.ncols()
    );
    // Magic (6) + version (2) + length (2) + header + newline must be a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');

    let file = std::fs::File::create(path).unwrap_or_else(|error| panic!("cannot create {path}: {error}"));
    let mut writer = BufWriter::new(file);
    writer.write_all(b"\x93NUMPY\x01\x00").unwrap();
    writer.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    writer.write_all(header.as_bytes()).unwrap();
    for value in matrix.iter() {
        writer.write_all(&value.to_le_bytes()).unwrap();
    }
    writer.flush().unwrap();
}

/// Reads a `.npy` file written by [`write_npy`] (f32, C order, 2-D).
fn read_npy(path: &str) -> Array2<f32> {
    let file = std::fs::File::open(path).unwrap_or_else(|error| panic!("cannot open {path}: {error}"));
    let mut reader = BufReader::new(file);
    let mut preamble = [0_u8; 10];
    reader.read_exact(&mut preamble).unwrap();
    assert_eq!(&preamble[..6], b"\x93NUMPY", "{path} is not a .npy file");
    let header_length = u16::from_le_bytes([preamble[8], preamble[9]]) as usize;
    let mut header = vec![0_u8; header_length];
    reader.read_exact(&mut header).unwrap();
    let header = String::from_utf8(header).unwrap();
    assert!(header.contains("'<f4'"), "{path}: expected f32 values, got header {header}");
    assert!(header.contains("'fortran_order': False"), "{path}: expected C order, got header {header}");

    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape = &shape[..shape.find(')').unwrap()];
    let dims: Vec<usize> = shape.split(',').filter(|part| !part.trim().is_empty()).map(|part| part.trim().parse().unwrap()).collect();
    let (rows, cols) = (dims[0], dims[1]);

    // Read in blocks so the peak memory holds the matrix once, as numpy's load does.
    let mut values = Vec::with_capacity(rows * cols);
    let mut block = vec![0_u8; 4 * cols];
    for _ in 0..rows {
        reader.read_exact(&mut block).unwrap();
        values.extend(block.chunks_exact(4).map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap())));
    }
    Array2::from_shape_vec((rows, cols), values).unwrap()
}
