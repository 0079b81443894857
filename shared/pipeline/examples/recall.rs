//! Recall@k of the HNSW index against exact search, on the page vectors
//! stored in a Folio store (for example one filled by `folio ingest`).
//!
//! It reads the live pages of the store (the current snapshot's segments
//! plus newer shards, exactly as the index build does), keeps the model
//! with the most pages, and builds one index per quantisation with the
//! product's default `IndexOptions`. Every page is then a query, left out
//! of both result lists, so a page cannot find itself. Recall@k is the
//! share of the exact top k that the HNSW search also returns, pooled over
//! all queries, for each `expansion_search` in the sweep. The product's
//! own setting is marked. "Counting ties" also counts a missed exact hit as
//! found when its exact score is within [`TIE_TOLERANCE`] of the exact
//! k-th score, because duplicate scans give equal vectors and then which of
//! the tied pages fill the last places is arbitrary.
//!
//! Usage: `target/debug/examples/recall STORE [--k 10] [--expansions 16,32,64,128,256]`
//! after `cargo build --workspace --examples`.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use folio_index::{
    DEFAULT_EXPANSION_SEARCH, ExactIndex, Hit, IndexOptions, IndexPart, Quantisation, Searcher, build_parts,
    count_recalled,
};
use folio_pipeline::{Layout, live};

/// Cosine difference below which two exact scores count as tied.
const TIE_TOLERANCE: f32 = 1e-4;

struct Settings {
    store: String,
    k: usize,
    expansions: Vec<usize>,
}

fn parse_arguments() -> Result<Settings, String> {
    let usage = "usage: recall STORE [--k 10] [--expansions 16,32,64,128,256]";
    let mut arguments = std::env::args().skip(1);
    let store = arguments.next().ok_or(usage)?;
    let mut settings = Settings {
        store,
        k: 10,
        expansions: vec![16, 32, 64, 128, 256],
    };
    while let Some(flag) = arguments.next() {
        let value = arguments.next().ok_or_else(|| format!("flag {flag} has no value; {usage}"))?;
        let invalid = |_| format!("invalid value {value:?} for {flag}; {usage}");
        match flag.as_str() {
            "--k" => settings.k = value.parse().map_err(invalid)?,
            "--expansions" => {
                settings.expansions = value
                    .split(',')
                    .map(|text| text.parse().map_err(|_| format!("invalid expansion {text:?} in {value:?}; {usage}")))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown flag {flag}; {usage}")),
        }
    }
    Ok(settings)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = parse_arguments()?;
    let k = settings.k;
    let store = folio_store::Store::open(&settings.store).await?;
    let shards = live::load_live(&store, &Layout::default()).await?;

    // Pages per model; the model with the most pages is measured.
    let mut by_model: BTreeMap<(String, usize), Vec<Vec<f32>>> = BTreeMap::new();
    for shard in &shards {
        let pages = by_model.entry((shard.meta.model_id.clone(), shard.meta.dims)).or_default();
        pages.extend(shard.embedded().filter_map(|row| row.embedding.clone()));
    }
    let ((model_id, dims), vectors) = by_model
        .into_iter()
        .max_by_key(|(_, vectors)| vectors.len())
        .ok_or_else(|| format!("{} holds no embedded pages; run folio ingest first", settings.store))?;
    let count = vectors.len();
    if count <= k {
        return Err(format!("{count} pages are too few to measure recall@{k}; ingest more scans").into());
    }
    println!("store {}: {count} pages of model {model_id:?}, {dims} dimensions", settings.store);
    println!("queries: every page, left out of its own results; k = {k}");

    let keyed = || vectors.iter().enumerate().map(|(key, vector)| (key as u64, vector.as_slice()));
    let exact = ExactIndex::from_vectors(dims, keyed())?;
    let exact_hits: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(key, vector)| exact.search_filtered(vector, k, |other| other != key as u64))
        .collect::<Result<_, _>>()?;

    println!("\n| quantisation | build s | size MB | expansion_search | recall@{k} | counting ties |");
    println!("|---|---|---|---|---|---|");
    for quantisation in [Quantisation::F16, Quantisation::F32, Quantisation::I8] {
        let options = IndexOptions {
            quantisation,
            ..IndexOptions::default()
        };
        let started = Instant::now();
        let parts = build_parts(dims, &options, keyed())?;
        let build_seconds = started.elapsed().as_secs_f64();
        let bytes: Vec<Vec<u8>> = parts.iter().map(IndexPart::to_bytes).collect::<Result<_, _>>()?;
        let size_mb = bytes.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;

        for &expansion in &settings.expansions {
            let loaded = bytes.iter().map(|part| IndexPart::load(part)).collect::<Result<Vec<_>, _>>()?;
            let searcher = Searcher::new(dims, loaded, expansion)?;
            let (mut found, mut expected, mut tied) = (0, 0, 0);
            for ((key, vector), exact) in vectors.iter().enumerate().zip(&exact_hits) {
                let hits = searcher.search_filtered(vector, k, |other| other != key as u64)?;
                let (query_found, query_expected) = count_recalled(&hits, exact, k);
                found += query_found;
                expected += query_expected;
                tied += tied_misses(&hits, exact, k);
            }
            let marker = if expansion == DEFAULT_EXPANSION_SEARCH { " (default)" } else { "" };
            println!(
                "| {quantisation} | {build_seconds:.2} | {size_mb:.2} | {expansion}{marker} | {:.4} | {:.4} |",
                found as f64 / expected as f64,
                (found + tied) as f64 / expected as f64
            );
        }
    }
    Ok(())
}

/// Counts exact top-k hits that the approximate list missed but that tie
/// with the exact k-th score, so another tied page could take their place.
fn tied_misses(approximate: &[Hit], exact: &[Hit], k: usize) -> usize {
    let Some(kth) = exact.get(k.min(exact.len()).saturating_sub(1)) else {
        return 0;
    };
    let returned: HashSet<u64> = approximate.iter().take(k).map(|hit| hit.key).collect();
    exact
        .iter()
        .take(k)
        .filter(|hit| !returned.contains(&hit.key) && hit.score - kth.score <= TIE_TOLERANCE)
        .count()
}
