//! Compaction of shards into segments, on a local folder and on a real
//! S3-compatible server. What readers get (live rows, status counts, search
//! results, deletions) is the same before and after each build and prune.
//! The sequencer rules still apply once shard files are pruned.

use std::collections::{BTreeMap, BTreeSet};

use folio_e2e::{S3Server, create_bucket, near};
use folio_index::IndexOptions;
use folio_pipeline::ingest::{self, EmbeddedObject};
use folio_pipeline::search::SearchEngine;
use folio_pipeline::snapshot::{self, CompactionOptions, Manifest};
use folio_pipeline::{DocumentVersion, Layout, live, status};
use folio_shard::{PageRow, ShardMeta};
use folio_store::Store;

const DIMS: usize = 32;
const MODEL: &str = "synthetic-32 (untrained)";
/// Small enough that the fixture's two-page documents fill several segments.
const TARGET_SEGMENT_BYTES: u64 = 1500;

fn unit_vector(seed: u64) -> Vec<f32> {
    folio_e2e::unit_vector(seed, DIMS)
}

fn version(document: &str, sequencer: &str) -> DocumentVersion {
    DocumentVersion {
        document: document.to_owned(),
        version: format!("v-{sequencer}"),
        sequencer: sequencer.to_owned(),
    }
}

async fn put_pages(store: &Store, model: &str, document: &str, sequencer: &str, pages: &[Vec<f32>]) {
    let version = version(document, sequencer);
    let rows = pages
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            PageRow::embedded(document, &version.version, sequencer, index as u32 + 1, (850, 1100), None, vector.clone())
        })
        .collect();
    let embedded = EmbeddedObject {
        rows,
        pages_embedded: pages.len() as u32,
        ..Default::default()
    };
    let meta = ShardMeta::new(model, DIMS, "none");
    ingest::store_object(store, &Layout::default(), &meta, &version, &embedded).await.expect("store the shard");
}

async fn put_unreadable(store: &Store, document: &str, sequencer: &str) {
    let version = version(document, sequencer);
    let embedded = EmbeddedObject {
        rows: vec![PageRow::failed(document, &version.version, sequencer, 0, "not a scan".to_owned())],
        object_error: Some("not a scan".to_owned()),
        ..Default::default()
    };
    let meta = ShardMeta::new(MODEL, DIMS, "none");
    ingest::store_object(store, &Layout::default(), &meta, &version, &embedded).await.expect("store the shard");
}

async fn delete(store: &Store, document: &str, sequencer: &str) {
    let meta = ShardMeta::new(MODEL, DIMS, "none");
    ingest::record_deletion(store, &Layout::default(), &meta, &version(document, sequencer))
        .await
        .expect("store the tombstone");
}

/// Everything a reader can see, in comparable form.
#[derive(Debug, PartialEq)]
struct Observed {
    /// (document, page, sequencer) of every live row, from `live::load_live`.
    rows: BTreeSet<(String, u32, String)>,
    /// Document hashes whose current entry is a tombstone.
    tombstones: BTreeSet<String>,
    /// documents, deleted documents, pages, failed pages, object errors.
    counts: (usize, usize, usize, usize, usize),
    /// Best document for each probe vector, and every document it reaches with k = 100.
    searches: Vec<(String, BTreeSet<String>)>,
    /// Best other document for each `similar` probe.
    similar: Vec<String>,
}

/// Query vectors to search with, and documents to search `similar` from.
struct Probes {
    vectors: Vec<Vec<f32>>,
    similar: Vec<&'static str>,
}

async fn observe(store: &Store, probes: &Probes) -> Observed {
    let layout = Layout::default();
    let rows = live::load_live(store, &layout)
        .await
        .expect("load the live rows")
        .into_iter()
        .flat_map(|shard| shard.rows)
        .map(|row| (row.document, row.page, row.sequencer))
        .collect();
    let manifest = snapshot::current_manifest(store, &layout).await.unwrap();
    let tombstones = live::load_current(store, &layout, manifest.as_ref())
        .await
        .unwrap()
        .tombstones
        .into_iter()
        .map(|entry| entry.document_hash)
        .collect();
    let status = status::status(store, &layout).await.expect("compute the status");
    let counts = (status.documents, status.deleted_documents, status.pages, status.failed_pages, status.object_errors);

    let engine = SearchEngine::open(store, &layout, MODEL, DIMS).await.expect("open the engine");
    let mut searches = Vec::new();
    for vector in &probes.vectors {
        let top = engine.search(std::slice::from_ref(vector), 1, -1.0, None).unwrap();
        let all = engine.search(std::slice::from_ref(vector), 100, -1.0, None).unwrap();
        searches.push((
            top.documents[0].document.clone(),
            all.documents.into_iter().map(|found| found.document).collect(),
        ));
    }
    let mut similar = Vec::new();
    for document in &probes.similar {
        let queries = engine.document_vectors(store, document, None).await.expect("read the document's vectors");
        let found = engine.search(&queries, 1, -1.0, Some(document)).unwrap();
        similar.push(found.documents[0].document.clone());
    }
    Observed {
        rows,
        tombstones,
        counts,
        searches,
        similar,
    }
}

/// Builds a snapshot with small segments, then prunes as the indexer does.
async fn build_and_prune(store: &Store) -> (Manifest, usize) {
    let layout = Layout::default();
    let compaction = CompactionOptions {
        target_segment_bytes: TARGET_SEGMENT_BYTES,
    };
    let manifest = snapshot::build_snapshot_with(store, &layout, MODEL, DIMS, &IndexOptions::default(), &compaction)
        .await
        .expect("build the snapshot");
    let pruned = snapshot::prune_snapshots(store, &layout, 2).await.unwrap()
        + snapshot::prune_superseded_shards(store, &layout, &manifest).await.unwrap();
    (manifest, pruned)
}

async fn listed_shards(store: &Store, document: &str) -> Vec<String> {
    store
        .list(&Layout::default().document_shards(document))
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key)
        .collect()
}

async fn shard_files(store: &Store) -> usize {
    live::list_shards(store, &Layout::default()).await.unwrap().values().map(Vec::len).sum()
}

/// Runs the whole scenario against one store.
async fn compaction_keeps_what_readers_see(store: Store) {
    // Twelve two-page documents; doc-00..02 each have a near copy.
    let mut pages: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
    for number in 0..12_u64 {
        let document = format!("docs/doc-{number:02}.tif");
        pages.insert(document, vec![unit_vector(100 + number), unit_vector(200 + number)]);
    }
    for number in 0..3_u64 {
        let original = pages[&format!("docs/doc-{number:02}.tif")].clone();
        let copy = vec![near(&original[0], 300 + number), near(&original[1], 400 + number)];
        pages.insert(format!("docs/doc-{number:02} copy.tif"), copy);
    }
    for (sequence, (document, vectors)) in pages.iter().enumerate() {
        put_pages(&store, MODEL, document, &format!("{:X}", 0x10 + sequence), vectors).await;
    }
    put_unreadable(&store, "docs/unreadable.tif", "40").await;
    put_pages(&store, "other-model", "docs/other model.tif", "41", &[unit_vector(500)]).await;
    put_pages(&store, MODEL, "docs/deleted early.tif", "42", &[unit_vector(501)]).await;
    delete(&store, "docs/deleted early.tif", "43").await;

    let probes = Probes {
        vectors: pages.values().map(|vectors| vectors[1].clone()).collect(),
        similar: vec!["docs/doc-00.tif", "docs/doc-01.tif", "docs/doc-02 copy.tif"],
    };
    let before = observe(&store, &probes).await;
    // Pages count every embedded page, the other model's included.
    assert_eq!(before.counts, (17, 1, 31, 0, 1), "{before:?}");
    assert_eq!(before.similar, vec!["docs/doc-00 copy.tif", "docs/doc-01 copy.tif", "docs/doc-02.tif"]);
    for ((top, _), document) in before.searches.iter().zip(pages.keys()) {
        assert_eq!(top, document);
    }

    // First build: every shard file is read and compacted.
    let (first, _) = build_and_prune(&store).await;
    assert!(first.segments.len() >= 3, "{:?}", first.segments);
    assert_eq!(first.segments_read, 0);
    assert_eq!(first.shard_files_read, 17, "15 documents, the unreadable one and the other model's");
    assert!(first.shards.iter().all(|shard| shard.segment.is_some()), "{:?}", first.shards);
    assert!(first.shards.iter().all(|shard| !shard.compacted_earlier), "nothing was compacted before");
    assert_eq!(observe(&store, &probes).await, before, "after the first build");
    let engine_on_first = SearchEngine::open(&store, &Layout::default(), MODEL, DIMS).await.unwrap();

    // Second build, nothing changed: rows come from segments, and the
    // files compacted by the first build are pruned now.
    let files_before = shard_files(&store).await;
    let (second, pruned) = build_and_prune(&store).await;
    assert_eq!(second.shard_files_read, 1, "only the other model's shard, which is never compacted");
    assert_eq!(second.segments_read, first.segments.len());
    assert!(second.shards.iter().all(|shard| shard.compacted_earlier), "{:?}", second.shards);
    assert!(pruned >= 16, "pruned {pruned} files");
    let files_after = shard_files(&store).await;
    assert_eq!(files_after + 16, files_before, "16 compacted shard files are pruned");
    assert_eq!(observe(&store, &probes).await, before, "after the second build and prune");
    // An engine opened on the first snapshot still reads its documents.
    let vectors = engine_on_first.document_vectors(&store, "docs/doc-05.tif", None).await.unwrap();
    assert_eq!(vectors.len(), 2);

    // Changes after compaction: an overwrite, a deletion, a new document
    // and a late event for a version older than the compacted one.
    assert!(listed_shards(&store, "docs/doc-03.tif").await.is_empty(), "doc-03's compacted shard is pruned");
    let overwritten = vec![unit_vector(600), unit_vector(601)];
    put_pages(&store, MODEL, "docs/doc-01.tif", "50", &overwritten).await;
    delete(&store, "docs/doc-02.tif", "51").await;
    put_pages(&store, MODEL, "docs/new.tif", "52", &[unit_vector(602)]).await;
    put_pages(&store, MODEL, "docs/doc-03.tif", "0F", &[unit_vector(603)]).await;

    let mut probes = probes;
    probes.vectors.extend([overwritten[0].clone(), unit_vector(602), unit_vector(603)]);
    let changed = observe(&store, &probes).await;
    let rows_of = |document: &str| -> Vec<(u32, String)> {
        changed
            .rows
            .iter()
            .filter(|(found, _, _)| found == document)
            .map(|(_, page, sequencer)| (*page, sequencer.clone()))
            .collect()
    };
    assert_eq!(rows_of("docs/doc-01.tif"), vec![(1, "50".to_owned()), (2, "50".to_owned())], "the overwrite wins");
    assert!(rows_of("docs/doc-02.tif").is_empty(), "the deletion wins");
    assert_eq!(rows_of("docs/new.tif"), vec![(1, "52".to_owned())]);
    let doc_03 = pages.keys().position(|document| document == "docs/doc-03.tif").unwrap();
    let compacted_sequencer = format!("{:X}", 0x10 + doc_03);
    assert_eq!(
        rows_of("docs/doc-03.tif"),
        vec![(1, compacted_sequencer.clone()), (2, compacted_sequencer)],
        "the late older event loses"
    );
    assert_eq!(changed.counts, (17, 2, 30, 0, 1), "{changed:?}");
    let documents = pages.keys().cloned().collect::<Vec<_>>();
    let doc_02 = documents.iter().position(|document| document == "docs/doc-02.tif").unwrap();
    assert_ne!(changed.searches[doc_02].0, "docs/doc-02.tif");
    assert!(!changed.searches[doc_02].1.contains("docs/doc-02.tif"));
    let extra = &changed.searches[documents.len()..];
    assert_eq!(extra[0].0, "docs/doc-01.tif");
    assert_eq!(extra[1].0, "docs/new.tif");
    assert_ne!(extra[2].0, "docs/doc-03.tif", "the late event's vector is not searchable");
    assert_ne!(changed.similar[2], "docs/doc-02.tif", "the deleted original is not found from its copy");

    // Third build: reads only the shard files newer than the snapshot.
    let (third, _) = build_and_prune(&store).await;
    assert_eq!(third.shard_files_read, 3, "doc-01's overwrite, new.tif and the other model's shard");
    assert_eq!(observe(&store, &probes).await, changed, "after the third build and prune");
    assert!(listed_shards(&store, "docs/doc-03.tif").await.is_empty(), "the late shard is pruned");
    let tombstone = listed_shards(&store, "docs/doc-02.tif").await;
    assert_eq!(tombstone.len(), 1, "{tombstone:?}");
    assert!(tombstone[0].ends_with("deleted.parquet"), "the latest tombstone is kept: {tombstone:?}");
}

#[tokio::test]
async fn compaction_on_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    compaction_keeps_what_readers_see(store).await;
}

#[tokio::test]
async fn compaction_on_s3_store() {
    let Some(server) = S3Server::start() else { return };
    let client = server.client().await;
    create_bucket(&client, "compaction", true).await;
    compaction_keeps_what_readers_see(Store::from_s3_client(client, "compaction", "")).await;
}
