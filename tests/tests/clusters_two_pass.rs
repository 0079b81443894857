//! Cluster summaries of collections above the in-memory limit, which read the live vectors
//! twice: once for page references and samples, once to assign every page. Checked on a
//! local folder and on a real S3-compatible server, with rows spread over segments and shard
//! files, against the one-read path on the same pages.

use std::collections::BTreeSet;

use folio_clusters::{ClusterParams, ClusterSummary, KChoice};
use folio_e2e::{S3Server, create_bucket, near, unit_vector};
use folio_index::IndexOptions;
use folio_pipeline::clusters::{ScanSource, build_clusters};
use folio_pipeline::ingest::{self, EmbeddedObject};
use folio_pipeline::snapshot::{self, CompactionOptions};
use folio_pipeline::{DocumentVersion, Layout};
use folio_shard::{PageRow, ShardMeta};
use folio_store::Store;

const DIMS: usize = 32;
const MODEL: &str = "synthetic-32 (untrained)";
const LAYOUTS: [&str; 4] = ["letters", "invoices", "faxes", "forms"];
/// Two-page documents per layout: 4 x 15 x 2 = 120 pages.
const DOCUMENTS_PER_LAYOUT: u64 = 15;

async fn put_document(store: &Store, document: &str, pages: [Vec<f32>; 2]) {
    let version = DocumentVersion {
        document: document.to_owned(),
        version: "v1".to_owned(),
        sequencer: "0A".to_owned(),
    };
    let rows = pages
        .into_iter()
        .enumerate()
        .map(|(index, vector)| PageRow::embedded(document, "v1", "0A", index as u32 + 1, (850, 1100), None, vector))
        .collect();
    let embedded = EmbeddedObject {
        rows,
        pages_embedded: 2,
        ..Default::default()
    };
    let meta = ShardMeta::new(MODEL, DIMS, "none");
    ingest::store_object(store, &Layout::default(), &meta, &version, &embedded).await.expect("store the shard");
}

/// Writes the documents of every layout. The first `compacted` of each layout go into
/// segments of a snapshot, and the rest stay shard files written after it.
async fn put_collection(store: &Store, compacted: u64) {
    for phase in [0..compacted, compacted..DOCUMENTS_PER_LAYOUT] {
        for (layout_index, layout) in LAYOUTS.iter().enumerate() {
            let base = unit_vector(1 + layout_index as u64, DIMS);
            for number in phase.clone() {
                let seed = 1000 * (layout_index as u64 + 1) + 2 * number;
                let pages = [near(&base, seed), near(&base, seed + 1)];
                put_document(store, &format!("{layout}/doc-{number:02}.tif"), pages).await;
            }
        }
        if phase.start == 0 {
            build_snapshot(store).await;
        }
    }
}

async fn build_snapshot(store: &Store) {
    let compaction = CompactionOptions { target_segment_bytes: 2000 };
    snapshot::build_snapshot_with(store, &Layout::default(), MODEL, DIMS, &IndexOptions::default(), &compaction)
        .await
        .expect("build the snapshot");
}

fn params(in_memory_pages: usize) -> ClusterParams {
    ClusterParams {
        k: KChoice::Given { k: 4 },
        sample_size_limit: 40,
        silhouette_sample_size: 30,
        near_duplicate_max_pages: in_memory_pages,
        seed: 3,
        ..ClusterParams::default()
    }
}

async fn summary(store: &Store, in_memory_pages: usize) -> ClusterSummary {
    let (summary, _) = build_clusters(store, &Layout::default(), MODEL, &params(in_memory_pages), &ScanSource::None)
        .await
        .expect("build the clusters");
    summary
}

/// Returns the layouts (document key prefixes) of each cluster's members.
fn layouts_per_cluster(summary: &ClusterSummary) -> Vec<BTreeSet<String>> {
    summary
        .clusters
        .iter()
        .map(|cluster| {
            cluster.members.iter().map(|page| page.document.split('/').next().unwrap().to_owned()).collect()
        })
        .collect()
}

async fn two_pass_summary_assigns_every_page(store: Store) {
    put_collection(&store, 8).await;

    let two_pass = summary(&store, 50).await;
    assert_eq!(two_pass.page_count, 120);
    assert_eq!(two_pass.document_count, 60);
    assert_eq!(two_pass.clusters.iter().map(|cluster| cluster.page_count).sum::<usize>(), 120);
    assert!(two_pass.sampled, "120 pages above a sample limit of 40");
    assert_eq!(two_pass.sample_size, 40);
    assert_eq!(two_pass.silhouette.sample_size, 30);
    assert!(!two_pass.near_duplicates.computed);
    assert!(two_pass.near_duplicates.scope.contains("two passes"), "{}", two_pass.near_duplicates.scope);
    // Each cluster contains exactly one layout, and every layout has its cluster.
    let layouts = layouts_per_cluster(&two_pass);
    assert!(layouts.iter().all(|set| set.len() == 1), "{layouts:?}");
    assert_eq!(layouts.iter().flatten().collect::<BTreeSet<_>>().len(), 4);

    // The one-read path finds the same clusters on the same pages, ranked by other centroids.
    let one_read = summary(&store, 1000).await;
    assert!(one_read.near_duplicates.computed);
    let members = |summary: &ClusterSummary| -> BTreeSet<BTreeSet<(String, u32)>> {
        summary
            .clusters
            .iter()
            .map(|cluster| cluster.members.iter().map(|page| (page.document.clone(), page.page)).collect())
            .collect()
    };
    assert_eq!(members(&two_pass), members(&one_read));

    // Compacting the remaining shard files changes how rows are read, not the summary.
    build_snapshot(&store).await;
    let after_compaction = summary(&store, 50).await;
    assert_eq!(after_compaction.clusters, two_pass.clusters);
    assert_eq!(after_compaction.parameters, two_pass.parameters);
    assert_eq!(after_compaction.silhouette, two_pass.silhouette);
}

#[tokio::test]
async fn two_pass_summary_on_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    two_pass_summary_assigns_every_page(store).await;
}

#[tokio::test]
async fn two_pass_summary_on_s3_store() {
    let Some(server) = S3Server::start() else { return };
    let client = server.client().await;
    create_bucket(&client, "clusters-two-pass", false).await;
    two_pass_summary_assigns_every_page(Store::from_s3_client(client, "clusters-two-pass", "")).await;
}
