//! Benchmark of the page-vector index on synthetic clustered vectors.
//!
//! For each vector count it first prints exact search latency, the baseline.
//! Then, for each quantisation, it prints build time, file size, recall@10
//! against exact search, open time plus first query (memory-mapped view and
//! full load) and warm query latency (median and p99 over the query set).
//! Last come recall and latency for a range of `expansion_search` values.
//!
//! The vectors are synthetic Gaussian clusters, not page embeddings; rerun on
//! real page vectors before trusting the recall numbers.
//!
//! Usage: `cargo run -p folio-index --example bench_index -- [--counts 10000,100000]
//! [--dims 2048] [--queries 200] [--all-quantisations-up-to 100000]`
//!
//! Counts above `--all-quantisations-up-to` run f16 only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ClusteredVectors, keyed};
use folio_index::{
    ExactIndex, Hit, IndexOptions, IndexPart, Quantisation, Searcher, build_parts, count_recalled,
};

const K: usize = 10;
const EXPANSION_SWEEP: [usize; 6] = [16, 32, 64, 128, 256, 512];

struct Settings {
    counts: Vec<usize>,
    dims: usize,
    queries: usize,
    all_quantisations_up_to: usize,
    /// Members per Gaussian cluster on average.
    cluster_size: usize,
    /// Offset norm relative to the unit-norm centre before normalising.
    spread: f32,
}

fn main() {
    let settings = parse_arguments();
    println!(
        "usearch {} with SIMD: {}",
        usearch::version(),
        usearch::hardware_acceleration_available()
    );
    println!("load average at start: {}", load_average());
    for &count in &settings.counts {
        run_count(&settings, count);
    }
    println!("load average at end: {}", load_average());
}

fn parse_arguments() -> Settings {
    let mut settings = Settings {
        counts: vec![10_000, 100_000],
        dims: 2048,
        queries: 200,
        all_quantisations_up_to: 100_000,
        cluster_size: 100,
        spread: 1.0,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.chunks(2) {
        let [flag, value] = pair else {
            panic!("flag {:?} has no value; see the usage in examples/bench_index.rs", pair[0]);
        };
        match flag.as_str() {
            "--counts" => settings.counts = value.split(',').map(|c| parse(flag, c)).collect(),
            "--dims" => settings.dims = parse(flag, value),
            "--queries" => settings.queries = parse(flag, value),
            "--all-quantisations-up-to" => settings.all_quantisations_up_to = parse(flag, value),
            "--cluster-size" => settings.cluster_size = parse(flag, value),
            "--spread" => settings.spread = parse(flag, value),
            other => panic!("unknown flag {other:?}; see the usage in examples/bench_index.rs"),
        }
    }
    settings
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| panic!("invalid value {value:?} for {flag}"))
}

fn run_count(settings: &Settings, count: usize) {
    let dims = settings.dims;
    let clusters = (count / settings.cluster_size).max(1);
    println!(
        "\n## {count} vectors x {dims} dims, {clusters} clusters, spread {}, {} queries, k = {K}",
        settings.spread, settings.queries
    );

    let started = Instant::now();
    let generator = ClusteredVectors::new(dims, clusters, settings.spread, 1);
    let vectors = generator.sample(count, 2);
    let queries = generator.sample(settings.queries, 3);
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());

    let exact_hits = measure_exact(dims, &vectors, &queries);

    println!(
        "\n| quantisation | parts | build s | file MB | recall@10 | view+1st query ms | load+1st query ms | warm median ms | warm p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let quantisations = if count <= settings.all_quantisations_up_to {
        vec![Quantisation::F16, Quantisation::F32, Quantisation::I8]
    } else {
        vec![Quantisation::F16]
    };
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let mut sweep_rows = Vec::new();
    for quantisation in quantisations {
        let path = directory.path().join(format!("{quantisation}.usearch"));
        let options = IndexOptions {
            quantisation,
            ..IndexOptions::default()
        };
        measure_quantisation(dims, &options, &vectors, &queries, &exact_hits, &path);
        sweep_rows.extend(sweep_expansion(dims, quantisation, &queries, &exact_hits, &path));
        std::fs::remove_file(&path).expect("remove the benchmark index file");
    }

    println!("\n| quantisation | expansion_search | recall@10 | warm median ms | warm p99 ms |");
    println!("|---|---|---|---|---|");
    for row in sweep_rows {
        println!("{row}");
    }
}

/// Times exact search for every query and returns its hits as ground truth.
fn measure_exact(dims: usize, vectors: &[f32], queries: &[f32]) -> Vec<Vec<Hit>> {
    let exact = ExactIndex::from_vectors(dims, keyed(vectors, dims)).expect("build the exact index");
    let mut latencies = Vec::new();
    let mut hits = Vec::new();
    for query in queries.chunks_exact(dims) {
        let started = Instant::now();
        hits.push(exact.search(query, K).expect("exact search"));
        latencies.push(started.elapsed());
    }
    let (median, p99) = median_and_p99(&mut latencies);
    println!(
        "exact (brute-force f32, NumKong dot products, one thread): median {:.2} ms, p99 {:.2} ms",
        millis(median),
        millis(p99)
    );
    hits
}

fn measure_quantisation(
    dims: usize,
    options: &IndexOptions,
    vectors: &[f32],
    queries: &[f32],
    exact_hits: &[Vec<Hit>],
    path: &Path,
) {
    let started = Instant::now();
    let parts = build_parts(dims, options, keyed(vectors, dims)).expect("build the index");
    let build_time = started.elapsed();
    assert_eq!(parts.len(), 1);
    parts[0].save(path).expect("save the index");
    drop(parts);
    let file_bytes = std::fs::metadata(path).expect("stat the index file").len();

    let first_query = &queries[..dims];
    let started = Instant::now();
    let viewed = IndexPart::view(path).expect("view the index");
    let searcher = Searcher::new(dims, vec![viewed], options.expansion_search).expect("searcher");
    searcher.search(first_query, K).expect("first query");
    let view_time = started.elapsed();
    drop(searcher);

    let started = Instant::now();
    let bytes = std::fs::read(path).expect("read the index file");
    let loaded = IndexPart::load(&bytes).expect("load the index");
    let searcher = Searcher::new(dims, vec![loaded], options.expansion_search).expect("searcher");
    searcher.search(first_query, K).expect("first query");
    let load_time = started.elapsed();
    drop(bytes);
    drop(searcher);

    let viewed = IndexPart::view(path).expect("view the index");
    let searcher = Searcher::new(dims, vec![viewed], options.expansion_search).expect("searcher");
    let (recall, median, p99) = measure_queries(&searcher, dims, queries, exact_hits);
    println!(
        "| {} | 1 | {:.1} | {:.1} | {:.4} | {:.1} | {:.1} | {:.3} | {:.3} |",
        options.quantisation,
        build_time.as_secs_f64(),
        file_bytes as f64 / 1e6,
        recall,
        millis(view_time),
        millis(load_time),
        millis(median),
        millis(p99)
    );
}

/// Returns one table row per `expansion_search` value, searching the viewed
/// file at `path`.
fn sweep_expansion(
    dims: usize,
    quantisation: Quantisation,
    queries: &[f32],
    exact_hits: &[Vec<Hit>],
    path: &Path,
) -> Vec<String> {
    let mut rows = Vec::new();
    for expansion in EXPANSION_SWEEP {
        let viewed = IndexPart::view(path).expect("view the index");
        let searcher = Searcher::new(dims, vec![viewed], expansion).expect("searcher");
        let (recall, median, p99) = measure_queries(&searcher, dims, queries, exact_hits);
        rows.push(format!(
            "| {quantisation} | {expansion} | {recall:.4} | {:.3} | {:.3} |",
            millis(median),
            millis(p99)
        ));
    }
    rows
}

/// Runs every query once as warm-up, then once timed; returns recall@10,
/// median and p99 latency.
fn measure_queries(
    searcher: &Searcher,
    dims: usize,
    queries: &[f32],
    exact_hits: &[Vec<Hit>],
) -> (f64, Duration, Duration) {
    for query in queries.chunks_exact(dims) {
        searcher.search(query, K).expect("warm-up query");
    }
    let mut latencies = Vec::new();
    let mut found = 0;
    let mut expected = 0;
    for (query, exact) in queries.chunks_exact(dims).zip(exact_hits) {
        let started = Instant::now();
        let hits = searcher.search(query, K).expect("query");
        latencies.push(started.elapsed());
        let (query_found, query_expected) = count_recalled(&hits, exact, K);
        found += query_found;
        expected += query_expected;
    }
    let (median, p99) = median_and_p99(&mut latencies);
    (found as f64 / expected as f64, median, p99)
}

fn median_and_p99(latencies: &mut [Duration]) -> (Duration, Duration) {
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p99_index = ((latencies.len() as f64 * 0.99).ceil() as usize).clamp(1, latencies.len()) - 1;
    (median, latencies[p99_index])
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|error| format!("unavailable ({error})"))
}
