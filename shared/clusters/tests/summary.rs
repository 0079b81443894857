//! Clustering on synthetic blobs: separation, k by silhouette, schema, determinism,
//! sampling, near-duplicates, drift and input errors.

mod common;

use common::{Blob, blobs, four_blobs, is_one_to_one, purity};
use folio_clusters::{ClusterError, ClusterParams, KChoice, PageRef, SummaryIds, summarise};
use ndarray::{Array2, concatenate, Axis};

fn ids() -> SummaryIds {
    SummaryIds { model_id: "bit-m-r50x1/1".into(), snapshot_id: "snapshot-a".into() }
}

fn given_k(k: usize) -> ClusterParams {
    ClusterParams { k: KChoice::Given { k }, seed: 7, ..ClusterParams::default() }
}

#[test]
fn summarise_separates_four_blobs() {
    let (pages, vectors, truth) = blobs(&four_blobs(), 64, 0.05, 1);
    let run = summarise(&pages, vectors.view(), &given_k(4), &ids()).unwrap();
    let summary = &run.summary;

    assert_eq!(purity(&run.labels, &truth), 1.0);
    assert!(is_one_to_one(&run.labels, &truth));
    assert_eq!(summary.clusters.len(), 4);
    assert_eq!(summary.clusters.iter().map(|c| c.page_count).sum::<usize>(), pages.len());
    assert_eq!(summary.clusters.iter().map(|c| c.members.len()).sum::<usize>(), pages.len());
    // Ids rank clusters by size, so they follow the blob sizes 60, 50, 40, 30.
    let sizes: Vec<usize> = summary.clusters.iter().map(|c| c.page_count).collect();
    assert_eq!(sizes, vec![60, 50, 40, 30]);
    assert_eq!(summary.page_count, 180);
    assert_eq!(summary.document_count, 30 + 25 + 20 + 15);
    assert!(!summary.sampled);
    assert_eq!(summary.sample_size, 180);
    assert!(summary.silhouette.overall > 0.5, "silhouette {}", summary.silhouette.overall);
    assert_eq!(summary.model_id, "bit-m-r50x1/1");
    assert_eq!(summary.snapshot_id, "snapshot-a");
}

#[test]
fn summarise_cluster_details_are_consistent() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 2);
    let run = summarise(&pages, vectors.view(), &given_k(4), &ids()).unwrap();

    for cluster in &run.summary.clusters {
        let folder = cluster.members[0].document.split('/').next().unwrap();
        assert!(cluster.members.iter().all(|page| page.document.starts_with(folder)));
        assert!(cluster.members.contains(&cluster.medoid), "medoid of cluster {} is not a member", cluster.id);
        assert_eq!(cluster.nearest_documents.len(), 10);
        assert_eq!(cluster.nearest_documents[0].document, cluster.members[0].document);
        let distances: Vec<f32> = cluster.nearest_documents.iter().map(|d| d.distance).collect();
        assert!(distances.windows(2).all(|pair| pair[0] <= pair[1]), "distances not ascending: {distances:?}");
        let cohesion = cluster.cohesion.unwrap();
        assert!(cohesion > 0.5, "cohesion {cohesion}");
        assert!(cohesion <= 1.0, "cohesion {cohesion}");
        let nearest = cluster.nearest_cluster.as_ref().unwrap();
        assert_ne!(nearest.id, cluster.id);
        assert!(nearest.distance > 0.0);
        assert_eq!(cluster.document_count, cluster.page_count / 2);
    }
}

#[test]
fn summarise_k_by_silhouette_finds_four() {
    let (pages, vectors, truth) = blobs(&four_blobs(), 64, 0.05, 3);
    let params = ClusterParams { seed: 11, ..ClusterParams::default() };
    let run = summarise(&pages, vectors.view(), &params, &ids()).unwrap();
    let parameters = &run.summary.parameters;

    assert_eq!(parameters.k, 4);
    assert_eq!(parameters.k_choice, KChoice::Silhouette { min: 2, max: 20 });
    let tried: Vec<usize> = parameters.k_candidates.iter().map(|c| c.k).collect();
    assert_eq!(tried, (2..=20).collect::<Vec<_>>());
    assert!(is_one_to_one(&run.labels, &truth));
}

#[test]
fn summarise_json_matches_schema() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 4);
    let mut previous = summarise(&pages, vectors.view(), &given_k(4), &ids()).unwrap().summary;
    previous.snapshot_id = "snapshot-0".into();
    let mut summary = summarise(&pages, vectors.view(), &ClusterParams::default(), &ids()).unwrap().summary;
    summary.attach_drift(&previous);

    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/cluster-summary.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();

    for instance in [&previous, &summary] {
        let json = serde_json::to_value(instance).unwrap();
        let errors: Vec<String> = validator.iter_errors(&json).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "schema errors: {errors:?}");
    }

    // The validator must also reject: a page number of 0 breaks the 1-based rule.
    let mut broken = serde_json::to_value(&summary).unwrap();
    broken["clusters"][0]["members"][0]["page"] = 0.into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn summarise_same_seed_gives_identical_json() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.2, 5);
    let params = ClusterParams { sample_size_limit: 120, silhouette_sample_size: 100, seed: 3, ..ClusterParams::default() };

    let first = serde_json::to_string(&summarise(&pages, vectors.view(), &params, &ids()).unwrap().summary).unwrap();
    let second = serde_json::to_string(&summarise(&pages, vectors.view(), &params, &ids()).unwrap().summary).unwrap();
    assert_eq!(first, second);

    let other_seed = ClusterParams { seed: 4, ..params };
    let third = serde_json::to_string(&summarise(&pages, vectors.view(), &other_seed, &ids()).unwrap().summary).unwrap();
    assert_ne!(first, third, "a different seed should change at least the recorded seed");
}

#[test]
fn summarise_sampled_assigns_every_page() {
    let (pages, vectors, truth) = blobs(&four_blobs(), 64, 0.05, 6);
    let params = ClusterParams {
        k: KChoice::Given { k: 4 },
        sample_size_limit: 60,
        silhouette_sample_size: 50,
        ..ClusterParams::default()
    };
    let run = summarise(&pages, vectors.view(), &params, &ids()).unwrap();
    let summary = &run.summary;

    assert!(summary.sampled);
    assert_eq!(summary.sample_size, 60);
    assert!(summary.silhouette.sampled);
    assert_eq!(summary.silhouette.sample_size, 50);
    assert_eq!(run.labels.len(), pages.len());
    assert_eq!(summary.clusters.iter().map(|c| c.page_count).sum::<usize>(), pages.len());
    assert!(is_one_to_one(&run.labels, &truth));
}

#[test]
fn summarise_pca_keeps_requested_variance() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 7);
    for share in [0.5, 0.9, 0.98] {
        let params = ClusterParams { variance_share: share, ..given_k(4) };
        let parameters = summarise(&pages, vectors.view(), &params, &ids()).unwrap().summary.parameters;
        assert!(parameters.variance_kept > share, "share {share}: kept {}", parameters.variance_kept);
        assert!(parameters.pca_dims <= 64);
        assert_eq!(parameters.input_dims, 64);
    }
    // Four centres span 3 directions after centring, so half the variance needs few dims.
    let params = ClusterParams { variance_share: 0.5, ..given_k(4) };
    let parameters = summarise(&pages, vectors.view(), &params, &ids()).unwrap().summary.parameters;
    assert!(parameters.pca_dims <= 3, "pca_dims {}", parameters.pca_dims);
}

#[test]
fn near_duplicates_grouped_within_threshold() {
    let (mut pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 8);
    // Three rescans of row 0 and one of row 70, each off by noise far below the blob spread.
    let mut copies = Array2::<f32>::zeros((4, 64));
    for (copy, (source, shift)) in [(0, 0.001_f32), (0, -0.001), (0, 0.002), (70, 0.001)].iter().enumerate() {
        let mut vector = vectors.row(*source).to_owned();
        vector[copy] += shift;
        let norm = vector.dot(&vector).sqrt();
        copies.row_mut(copy).assign(&(vector / norm));
    }
    for (copy, source) in [0, 0, 0, 70].iter().enumerate() {
        pages.push(PageRef::new(format!("rescans/{}-{copy}.tif", pages[*source].document), 1));
    }
    let all = concatenate(Axis(0), &[vectors.view(), copies.view()]).unwrap();

    let summary = summarise(&pages, all.view(), &given_k(4), &ids()).unwrap().summary;
    let duplicates = &summary.near_duplicates;

    assert!(duplicates.computed);
    assert_eq!(duplicates.threshold, 0.95);
    assert_eq!(duplicates.groups.len(), 2, "groups: {:?}", duplicates.groups);
    assert_eq!(duplicates.groups[0].len(), 4);
    assert!(duplicates.groups[0].contains(&pages[0]));
    assert_eq!(duplicates.groups[1].len(), 2);
    assert!(duplicates.groups[1].contains(&pages[70]));
}

#[test]
fn near_duplicates_skipped_above_limit() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 9);
    let params = ClusterParams { near_duplicate_max_pages: 100, ..given_k(4) };
    let summary = summarise(&pages, vectors.view(), &params, &ids()).unwrap().summary;
    assert!(!summary.near_duplicates.computed);
    assert!(summary.near_duplicates.groups.is_empty());
    assert!(summary.near_duplicates.scope.contains("100"));
}

#[test]
fn drift_reports_grown_and_new_cluster() {
    let (pages, vectors, _) = blobs(
        &[
            Blob { name: "letters", count: 80 },
            Blob { name: "invoices", count: 50 },
            Blob { name: "faxes", count: 40 },
            Blob { name: "receipts", count: 45 },
        ],
        64,
        0.05,
        10,
    );
    // Previous snapshot: the first 40 letters, all invoices and faxes, no receipts.
    let previous_rows: Vec<usize> = (0..40).chain(80..170).collect();
    let previous_pages: Vec<PageRef> = previous_rows.iter().map(|&row| pages[row].clone()).collect();
    let previous_vectors = vectors.select(Axis(0), &previous_rows);
    let mut previous = summarise(&previous_pages, previous_vectors.view(), &given_k(3), &ids()).unwrap().summary;
    previous.snapshot_id = "snapshot-0".into();

    let mut current = summarise(&pages, vectors.view(), &given_k(4), &ids()).unwrap().summary;
    current.attach_drift(&previous);
    let drift = current.drift.as_ref().unwrap();

    let find = |summary: &folio_clusters::ClusterSummary, folder: &str| {
        summary.clusters.iter().find(|c| c.members[0].document.starts_with(folder)).unwrap().id
    };
    assert_eq!(drift.previous_snapshot_id, "snapshot-0");
    assert_eq!(drift.grew.len(), 1);
    assert_eq!(drift.grew[0].previous_id, find(&previous, "letters"));
    assert_eq!(drift.grew[0].current_id, find(&current, "letters"));
    assert_eq!((drift.grew[0].previous_pages, drift.grew[0].current_pages), (40, 80));
    assert_eq!(drift.grew[0].shared_pages, 40);
    assert_eq!(drift.unchanged.len(), 2);
    assert!(drift.shrank.is_empty());
    assert_eq!(drift.appeared.len(), 1);
    assert_eq!(drift.appeared[0].id, find(&current, "receipts"));
    assert_eq!(drift.appeared[0].pages, 45);
    assert!(drift.disappeared.is_empty());

    // The reverse comparison reports a shrunk cluster and a disappeared one.
    let reverse = folio_clusters::compare(&current, &previous);
    assert_eq!(reverse.shrank.len(), 1);
    assert_eq!(reverse.disappeared.len(), 1);
    assert!(reverse.appeared.is_empty());
}

#[test]
fn members_page_clamps_to_member_list() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 12);
    let summary = summarise(&pages, vectors.view(), &given_k(4), &ids()).unwrap().summary;
    let cluster = &summary.clusters[3];

    assert_eq!(cluster.members_page(0, 10), &cluster.members[..10]);
    assert_eq!(cluster.members_page(25, 10), &cluster.members[25..30]);
    assert!(cluster.members_page(30, 10).is_empty());
    assert!(cluster.members_page(usize::MAX, usize::MAX).is_empty());
}

#[test]
fn summarise_rejects_invalid_input() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 13);

    let error = summarise(&pages[1..], vectors.view(), &given_k(4), &ids()).unwrap_err();
    assert!(matches!(error, ClusterError::PageCountMismatch { pages: 179, rows: 180 }), "{error}");

    let mut with_nan = vectors.clone();
    with_nan[[5, 3]] = f32::NAN;
    let error = summarise(&pages, with_nan.view(), &given_k(4), &ids()).unwrap_err();
    assert!(matches!(error, ClusterError::NonFiniteVector { row: 5, .. }), "{error}");
    assert!(error.to_string().contains(&pages[5].document));

    let mut zero_page = pages.clone();
    zero_page[2].page = 0;
    let error = summarise(&zero_page, vectors.view(), &given_k(4), &ids()).unwrap_err();
    assert!(matches!(error, ClusterError::InvalidPageNumber { .. }), "{error}");

    let error = summarise(&pages, vectors.view(), &given_k(500), &ids()).unwrap_err();
    assert!(matches!(error, ClusterError::KTooLarge { k: 500, points: 180 }), "{error}");

    let params = ClusterParams { variance_share: 1.5, ..given_k(4) };
    let error = summarise(&pages, vectors.view(), &params, &ids()).unwrap_err();
    assert!(error.to_string().contains("variance_share = 1.5"), "{error}");

    let error = summarise(&pages[..1], vectors.slice(ndarray::s![..1, ..]), &given_k(1), &ids()).unwrap_err();
    assert!(matches!(error, ClusterError::TooFewPages { pages: 1 }), "{error}");
}
