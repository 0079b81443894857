mod common;

use common::{ClusteredVectors, keyed};
use folio_index::{
    ExactIndex, Hit, IndexError, IndexOptions, IndexPart, Quantisation, Searcher, build_parts,
    merge_hits, recall_at_k,
};

const DIMS: usize = 64;

fn clustered(count: usize, seed: u64) -> Vec<f32> {
    ClusteredVectors::new(DIMS, 20, 1.0, 7).sample(count, seed)
}

fn options(quantisation: Quantisation) -> IndexOptions {
    IndexOptions {
        quantisation,
        ..IndexOptions::default()
    }
}

fn keys(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|hit| hit.key).collect()
}

fn row(vectors: &[f32], index: usize) -> &[f32] {
    &vectors[index * DIMS..(index + 1) * DIMS]
}

// Options

#[test]
fn quantisation_parses_names() {
    assert_eq!("f16".parse::<Quantisation>().unwrap(), Quantisation::F16);
    assert_eq!("f32".parse::<Quantisation>().unwrap(), Quantisation::F32);
    assert_eq!("i8".parse::<Quantisation>().unwrap(), Quantisation::I8);
    assert_eq!("F16".parse::<Quantisation>().unwrap(), Quantisation::F16);
    assert_eq!(Quantisation::default(), Quantisation::F16);
}

#[test]
fn quantisation_rejects_unknown_name() {
    let error = "bf16".parse::<Quantisation>().unwrap_err();
    let message = error.to_string();
    assert!(message.contains("\"bf16\""), "{message}");
    assert!(message.contains("\"f16\", \"f32\" or \"i8\""), "{message}");
}

#[test]
fn options_deserialise_with_defaults() {
    let parsed: IndexOptions =
        serde_json::from_str(r#"{"quantisation": "i8", "max_part_bytes": 1000000}"#).unwrap();
    assert_eq!(parsed.quantisation, Quantisation::I8);
    assert_eq!(parsed.max_part_bytes, Some(1_000_000));
    assert_eq!(parsed.connectivity, IndexOptions::default().connectivity);
    assert_eq!(parsed.expansion_search, IndexOptions::default().expansion_search);
}

#[test]
fn options_serialise_round_trip() {
    let original = IndexOptions {
        quantisation: Quantisation::F32,
        max_part_vectors: Some(5000),
        ..IndexOptions::default()
    };
    let json = serde_json::to_string(&original).unwrap();
    assert!(json.contains(r#""quantisation":"f32""#), "{json}");
    let parsed: IndexOptions = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, original);
}

#[test]
fn options_reject_unknown_quantisation_in_json() {
    let error = serde_json::from_str::<IndexOptions>(r#"{"quantisation": "f8"}"#).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("\"f8\""), "{message}");
}

#[test]
fn options_reject_zero_limits() {
    let zero_vectors = IndexOptions {
        max_part_vectors: Some(0),
        ..IndexOptions::default()
    };
    let message = zero_vectors.validate().unwrap_err().to_string();
    assert!(message.contains("max_part_vectors = 0"), "{message}");

    let tiny_connectivity = IndexOptions {
        connectivity: 1,
        ..IndexOptions::default()
    };
    let message = tiny_connectivity.validate().unwrap_err().to_string();
    assert!(message.contains("connectivity = 1"), "{message}");
}

// Input checks

#[test]
fn build_rejects_wrong_dims() {
    let short = vec![0.5_f32; DIMS - 1];
    let error = build_parts(DIMS, &IndexOptions::default(), [(42, short.as_slice())]).unwrap_err();
    assert!(matches!(
        error,
        IndexError::DimensionMismatch {
            key: 42,
            expected: DIMS,
            actual
        } if actual == DIMS - 1
    ));
    let message = error.to_string();
    assert!(message.contains("key 42"), "{message}");
    assert!(message.contains("63 dimensions, expected 64"), "{message}");
}

#[test]
fn build_rejects_nan_with_key_and_position() {
    let vectors = clustered(3, 1);
    let mut bad = row(&vectors, 1).to_vec();
    bad[17] = f32::NAN;
    let input = [(10, row(&vectors, 0)), (11, bad.as_slice()), (12, row(&vectors, 2))];
    let error = build_parts(DIMS, &IndexOptions::default(), input).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("key 11"), "{message}");
    assert!(message.contains("NaN"), "{message}");
    assert!(message.contains("dimension 17"), "{message}");
}

#[test]
fn build_rejects_infinity() {
    let mut bad = vec![0.1_f32; DIMS];
    bad[0] = f32::NEG_INFINITY;
    let error = build_parts(DIMS, &IndexOptions::default(), [(5, bad.as_slice())]).unwrap_err();
    assert!(error.to_string().contains("-inf"), "{error}");
}

#[test]
fn build_rejects_zero_vector() {
    let zero = vec![0.0_f32; DIMS];
    let error = build_parts(DIMS, &IndexOptions::default(), [(8, zero.as_slice())]).unwrap_err();
    assert!(matches!(error, IndexError::ZeroVector { key: 8 }), "{error}");
}

#[test]
fn build_rejects_duplicate_key() {
    let vectors = clustered(2, 1);
    let input = [(3, row(&vectors, 0)), (3, row(&vectors, 1))];
    let error = build_parts(DIMS, &IndexOptions::default(), input).unwrap_err();
    assert!(matches!(error, IndexError::DuplicateKey { key: 3 }), "{error}");
}

#[test]
fn build_rejects_reserved_key() {
    let vectors = clustered(1, 1);
    let error =
        build_parts(DIMS, &IndexOptions::default(), [(u64::MAX, row(&vectors, 0))]).unwrap_err();
    assert!(matches!(error, IndexError::ReservedKey { .. }), "{error}");
}

#[test]
fn build_empty_input_makes_no_parts() {
    let parts = build_parts(DIMS, &IndexOptions::default(), std::iter::empty()).unwrap();
    assert!(parts.is_empty());
    let searcher = Searcher::new(DIMS, parts, 64).unwrap();
    let query = vec![1.0_f32; DIMS];
    assert!(searcher.search(&query, 5).unwrap().is_empty());
}

#[test]
fn search_rejects_wrong_query_dims() {
    let vectors = clustered(10, 1);
    let parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let searcher = Searcher::new(DIMS, parts, 64).unwrap();
    let message = searcher.search(&[1.0; 3], 5).unwrap_err().to_string();
    assert!(message.contains("query has 3 dimensions, expected 64"), "{message}");

    let exact = ExactIndex::from_vectors(DIMS, keyed(&vectors, DIMS)).unwrap();
    let message = exact.search(&[1.0; 65], 5).unwrap_err().to_string();
    assert!(message.contains("query has 65 dimensions, expected 64"), "{message}");
}

#[test]
fn search_rejects_nan_query() {
    let vectors = clustered(10, 1);
    let parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let searcher = Searcher::new(DIMS, parts, 64).unwrap();
    let mut query = row(&vectors, 0).to_vec();
    query[3] = f32::NAN;
    let error = searcher.search(&query, 5).unwrap_err();
    assert!(
        matches!(error, IndexError::QueryNonFinite { dimension: 3, value } if value.is_nan()),
        "{error}"
    );
    assert!(error.to_string().contains("NaN"), "{error}");
}

#[test]
fn searcher_rejects_part_of_other_dims() {
    let vectors = clustered(10, 1);
    let parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let error = Searcher::new(128, parts, 64).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("part 0 has 64 dimensions, expected 128"), "{message}");
}

#[test]
fn load_rejects_garbage_bytes() {
    let garbage = vec![0xAB_u8; 512];
    let error = IndexPart::load(&garbage).unwrap_err();
    assert!(error.to_string().contains("usearch failed"), "{error}");
}

// Round trips

/// Builds one part from 500 clustered vectors and returns it with them.
fn built_part() -> (Vec<f32>, IndexPart) {
    let vectors = clustered(500, 1);
    let mut parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    assert_eq!(parts.len(), 1);
    (vectors, parts.remove(0))
}

/// Returns the top 10 hits of the first ten rows used as queries.
fn hits_of(part: IndexPart, vectors: &[f32]) -> Vec<Vec<Hit>> {
    let searcher = Searcher::new(DIMS, vec![part], 64).unwrap();
    (0..10)
        .map(|query| searcher.search(row(vectors, query), 10).unwrap())
        .collect()
}

#[test]
fn part_round_trips_through_bytes() {
    let (vectors, part) = built_part();
    let bytes = part.to_bytes().unwrap();
    assert_eq!(bytes.len(), part.serialized_len());
    let expected = hits_of(part, &vectors);

    let loaded = IndexPart::load(&bytes).unwrap();
    assert_eq!(loaded.len(), 500);
    assert_eq!(loaded.dims(), DIMS);
    assert_eq!(loaded.quantisation(), Quantisation::F16);
    assert!(loaded.contains(499));
    assert!(!loaded.contains(500));
    assert_eq!(hits_of(loaded, &vectors), expected);
}

#[test]
fn part_round_trips_through_saved_file() {
    let (vectors, part) = built_part();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("part-0.usearch");
    part.save(&path).unwrap();

    let file_bytes = std::fs::read(&path).unwrap();
    assert_eq!(file_bytes, part.to_bytes().unwrap());
    let expected = hits_of(part, &vectors);

    let viewed = IndexPart::view(&path).unwrap();
    assert_eq!(viewed.len(), 500);
    assert_eq!(hits_of(viewed, &vectors), expected);

    let loaded = IndexPart::load(&file_bytes).unwrap();
    assert_eq!(hits_of(loaded, &vectors), expected);
}

#[test]
fn view_reports_missing_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("absent.usearch");
    let message = IndexPart::view(&path).unwrap_err().to_string();
    assert!(message.contains("absent.usearch"), "{message}");
}

// Parts

#[test]
fn build_splits_by_vector_limit() {
    let vectors = clustered(1000, 1);
    let options = IndexOptions {
        max_part_vectors: Some(300),
        ..IndexOptions::default()
    };
    let parts = build_parts(DIMS, &options, keyed(&vectors, DIMS)).unwrap();
    let sizes: Vec<usize> = parts.iter().map(IndexPart::len).collect();
    assert_eq!(sizes, vec![300, 300, 300, 100]);
}

#[test]
fn build_splits_by_byte_limit() {
    let vectors = clustered(1000, 1);
    let single = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let whole_bytes = single[0].serialized_len() as u64;

    let limit = whole_bytes / 3;
    let options = IndexOptions {
        max_part_bytes: Some(limit),
        ..IndexOptions::default()
    };
    let parts = build_parts(DIMS, &options, keyed(&vectors, DIMS)).unwrap();
    assert!(parts.len() >= 3, "{} parts", parts.len());
    assert!(parts.len() <= 5, "{} parts", parts.len());
    for part in &parts {
        assert!(part.serialized_len() as u64 <= limit, "{part:?} over {limit} bytes");
        assert!(part.serialized_len() as u64 == part.to_bytes().unwrap().len() as u64);
    }
    let total: usize = parts.iter().map(IndexPart::len).sum();
    assert_eq!(total, 1000);
}

#[test]
fn build_rejects_byte_limit_below_one_vector() {
    let vectors = clustered(10, 1);
    let options = IndexOptions {
        max_part_bytes: Some(100),
        ..IndexOptions::default()
    };
    let error = build_parts(DIMS, &options, keyed(&vectors, DIMS)).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("max_part_bytes 100 is too small"), "{message}");
}

#[test]
fn search_over_parts_equals_single_part() {
    // HNSW graphs built on two threads are not always fully connected, so
    // even with ef above the vector count a search can miss a node. Both
    // layouts must therefore agree with exact search on the best hit and
    // reach the same high recall, not return identical lists.
    let vectors = clustered(600, 1);
    let queries = clustered(20, 2);
    let options = IndexOptions {
        quantisation: Quantisation::F32,
        ..IndexOptions::default()
    };
    let split_options = IndexOptions {
        max_part_vectors: Some(150),
        ..options.clone()
    };
    let single = build_parts(DIMS, &options, keyed(&vectors, DIMS)).unwrap();
    let split = build_parts(DIMS, &split_options, keyed(&vectors, DIMS)).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(split.len(), 4);

    let single = Searcher::new(DIMS, single, 1000).unwrap();
    let split = Searcher::new(DIMS, split, 1000).unwrap();
    let exact = ExactIndex::from_vectors(DIMS, keyed(&vectors, DIMS)).unwrap();
    let (mut single_found, mut split_found, mut total) = (0, 0, 0);
    for query in queries.chunks_exact(DIMS) {
        let single_hits = single.search(query, 10).unwrap();
        let split_hits = split.search(query, 10).unwrap();
        let exact_hits = exact.search(query, 10).unwrap();
        // Scores, not keys: clustered test vectors can tie for the best hit.
        assert!((split_hits[0].score - exact_hits[0].score).abs() < 1e-5);
        assert!((single_hits[0].score - exact_hits[0].score).abs() < 1e-5);
        let exact_keys = keys(&exact_hits);
        single_found += keys(&single_hits).iter().filter(|key| exact_keys.contains(key)).count();
        split_found += keys(&split_hits).iter().filter(|key| exact_keys.contains(key)).count();
        total += exact_keys.len();
        // A key both layouts return has the same f32 score in both.
        for split_hit in &split_hits {
            if let Some(single_hit) = single_hits.iter().find(|hit| hit.key == split_hit.key) {
                assert!((split_hit.score - single_hit.score).abs() < 1e-6);
            }
        }
    }
    let single_recall = single_found as f64 / total as f64;
    let split_recall = split_found as f64 / total as f64;
    assert!(single_recall >= 0.98, "single part recall@10 {single_recall}");
    assert!(split_recall >= 0.98, "split parts recall@10 {split_recall}");
}

// Quantisations

#[test]
fn every_quantisation_builds_and_searches() {
    let vectors = clustered(800, 1);
    let exact = ExactIndex::from_vectors(DIMS, keyed(&vectors, DIMS)).unwrap();
    for quantisation in [Quantisation::F16, Quantisation::F32, Quantisation::I8] {
        let parts = build_parts(DIMS, &options(quantisation), keyed(&vectors, DIMS)).unwrap();
        assert_eq!(parts[0].quantisation(), quantisation);
        let searcher = Searcher::new(DIMS, parts, 128).unwrap();

        for query_row in [0, 399, 799] {
            let query = row(&vectors, query_row);
            let hits = searcher.search(query, 10).unwrap();
            assert_eq!(hits.len(), 10, "{quantisation}");
            assert_eq!(hits[0].key, query_row as u64, "{quantisation}");
            assert!(hits[0].score > 0.99, "{quantisation}: {:?}", hits[0]);
            assert!(
                hits.windows(2).all(|pair| pair[0].score >= pair[1].score),
                "{quantisation}: not best first: {hits:?}"
            );
            let exact_hits = exact.search(query, 10).unwrap();
            let tolerance = if quantisation == Quantisation::I8 { 0.05 } else { 0.01 };
            assert!(
                (hits[1].score - exact_hits[1].score).abs() < tolerance,
                "{quantisation}: {:?} against exact {:?}",
                hits[1],
                exact_hits[1]
            );
        }
    }
}

#[test]
fn stored_vector_round_trips_per_quantisation() {
    let vectors = clustered(300, 4);
    for quantisation in [Quantisation::F16, Quantisation::F32, Quantisation::I8] {
        let parts = build_parts(
            DIMS,
            &IndexOptions {
                max_part_vectors: Some(100),
                ..options(quantisation)
            },
            keyed(&vectors, DIMS),
        )
        .unwrap();
        let searcher = Searcher::new(DIMS, parts, 128).unwrap();
        for key in [0_usize, 150, 299] {
            let stored = searcher.vector(key as u64).unwrap().expect("the key is stored");
            assert_eq!(stored.len(), DIMS, "{quantisation}");
            let original = row(&vectors, key);
            let exact = ExactIndex::from_vectors(DIMS, [(0_u64, original)]).unwrap();
            let cosine = exact.search(&stored, 1).unwrap()[0].score;
            let minimum = if quantisation == Quantisation::I8 { 0.99 } else { 0.9999 };
            assert!(cosine > minimum, "{quantisation} key {key}: cosine {cosine}");
        }
        assert_eq!(searcher.vector(300).unwrap(), None, "{quantisation}");
    }
}

#[test]
fn recall_at_10_on_clustered_set() {
    // A few thousand vectors in 256 dimensions, 40 Gaussian blobs.
    let dims = 256;
    let generator = ClusteredVectors::new(dims, 40, 1.0, 11);
    let vectors = generator.sample(4000, 12);
    let queries = generator.sample(100, 13);

    let options = IndexOptions::default();
    let parts = build_parts(dims, &options, keyed(&vectors, dims)).unwrap();
    let searcher = Searcher::new(dims, parts, options.expansion_search).unwrap();
    let exact = ExactIndex::from_vectors(dims, keyed(&vectors, dims)).unwrap();

    let recall = recall_at_k(&searcher, &exact, queries.chunks_exact(dims), 10).unwrap();
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

// Exact index and filtering

#[test]
fn exact_search_finds_itself_first() {
    let vectors = clustered(200, 1);
    let exact = ExactIndex::from_vectors(DIMS, keyed(&vectors, DIMS)).unwrap();
    let hits = exact.search(row(&vectors, 42), 5).unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].key, 42);
    assert!((hits[0].score - 1.0).abs() < 1e-5, "{:?}", hits[0]);
    assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
}

#[test]
fn exact_search_scores_unnormalised_vectors_by_cosine() {
    let mut exact = ExactIndex::new(2).unwrap();
    exact.add(1, &[10.0, 0.0]).unwrap();
    exact.add(2, &[3.0, 3.0]).unwrap();
    let hits = exact.search(&[0.5, 0.0], 2).unwrap();
    assert_eq!(keys(&hits), vec![1, 2]);
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
}

#[test]
fn exact_rejects_duplicate_key() {
    let mut exact = ExactIndex::new(2).unwrap();
    exact.add(1, &[1.0, 0.0]).unwrap();
    let error = exact.add(1, &[0.0, 1.0]).unwrap_err();
    assert!(matches!(error, IndexError::DuplicateKey { key: 1 }), "{error}");
    assert_eq!(exact.len(), 1);
}

#[test]
fn filtered_search_excludes_keys() {
    let vectors = clustered(500, 1);
    let parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let searcher = Searcher::new(DIMS, parts, 128).unwrap();
    let exact = ExactIndex::from_vectors(DIMS, keyed(&vectors, DIMS)).unwrap();
    let query = row(&vectors, 7);

    let unfiltered = searcher.search(query, 10).unwrap();
    let deleted: Vec<u64> = keys(&unfiltered)[..5].to_vec();
    let keep = |key: u64| !deleted.contains(&key);

    let filtered = searcher.search_filtered(query, 10, keep).unwrap();
    assert_eq!(filtered.len(), 10);
    assert!(filtered.iter().all(|hit| keep(hit.key)), "{filtered:?}");
    assert_eq!(keys(&filtered)[..5], keys(&unfiltered)[5..]);

    let exact_filtered = exact.search_filtered(query, 10, keep).unwrap();
    assert_eq!(exact_filtered.len(), 10);
    assert!(exact_filtered.iter().all(|hit| keep(hit.key)), "{exact_filtered:?}");
}

#[test]
fn merge_hits_keeps_best_score_per_key() {
    let snapshot = vec![
        Hit { key: 1, score: 0.9 },
        Hit { key: 2, score: 0.8 },
        Hit { key: 3, score: 0.7 },
    ];
    let newer = vec![Hit { key: 2, score: 0.95 }, Hit { key: 4, score: 0.75 }];
    let merged = merge_hits([snapshot, newer], 3);
    assert_eq!(
        merged,
        vec![
            Hit { key: 2, score: 0.95 },
            Hit { key: 1, score: 0.9 },
            Hit { key: 4, score: 0.75 },
        ]
    );
}

#[test]
fn merge_hits_orders_ties_by_key() {
    let merged = merge_hits([vec![Hit { key: 9, score: 0.5 }], vec![Hit { key: 3, score: 0.5 }]], 5);
    assert_eq!(keys(&merged), vec![3, 9]);
}

#[test]
fn search_with_zero_k_returns_nothing() {
    let vectors = clustered(20, 1);
    let parts = build_parts(DIMS, &IndexOptions::default(), keyed(&vectors, DIMS)).unwrap();
    let searcher = Searcher::new(DIMS, parts, 64).unwrap();
    assert!(searcher.search(row(&vectors, 0), 0).unwrap().is_empty());
}
