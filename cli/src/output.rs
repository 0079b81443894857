//! Text output shared by the commands, and `folio status` / `folio errors`.

use folio_pipeline::Layout;
use folio_pipeline::snapshot::Manifest;
use folio_shard::PageStatus;
use folio_store::Store;

/// One line naming the model and snapshot behind a result, and warning
/// when the model is untrained (its similarities reflect layout and ink,
/// not what a trained BiT model sees).
pub fn provenance(model_id: &str, snapshot_id: Option<&str>, created_at: Option<u64>) -> String {
    let snapshot = match (snapshot_id, created_at) {
        (Some(id), Some(created)) => format!("snapshot {id} ({} old)", age(now().saturating_sub(created))),
        (Some(id), None) => format!("snapshot {id}"),
        (None, _) => "no snapshot yet: newer shards searched exactly".to_owned(),
    };
    let warning = if folio_pipeline::is_untrained(model_id) {
        "\nNOTE: untrained model (random weights); run infra/fetch-model.sh for the real BiT-M-R50x1 weights"
    } else {
        ""
    };
    format!("model {model_id}, {snapshot}{warning}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

fn age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

pub fn print_manifest(manifest: &Manifest) {
    let bytes: u64 = manifest.parts.iter().map(|part| part.bytes).sum();
    println!(
        "snapshot {}: {} pages of {} documents in {} part(s), {:.1} MB ({}), built in {:.1} s",
        manifest.snapshot_id,
        manifest.pages,
        manifest.documents,
        manifest.parts.len(),
        bytes as f64 / 1e6,
        manifest.options.quantisation.as_str(),
        manifest.build_seconds
    );
    if manifest.failed_pages > 0 {
        println!("{} pages failed to decode and are not searchable (folio errors lists them)", manifest.failed_pages);
    }
    for (shard, model) in &manifest.skipped_shards {
        println!("left out {shard}: embedded by {model}, not by {}; re-ingest it", manifest.model_id);
    }
}

pub async fn status(store: &Store, layout: &Layout, json: bool) -> anyhow::Result<()> {
    let status = folio_pipeline::status::status(store, layout).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!("store {}", store.location());
    println!(
        "{} documents ({} deleted), {} pages searchable, {} pages failed, {} unreadable objects",
        status.documents, status.deleted_documents, status.pages, status.failed_pages, status.object_errors
    );
    match (&status.snapshot_id, status.snapshot_age_seconds) {
        (Some(id), Some(seconds)) => println!(
            "snapshot {id}, {} old, model {}; {} shards newer than it",
            age(seconds),
            status.snapshot_model_id.as_deref().unwrap_or("?"),
            status.shards_not_in_snapshot
        ),
        _ => println!("no snapshot yet (run folio index); {} shards", status.shards_not_in_snapshot),
    }
    Ok(())
}

/// A failed object or page, for `folio errors`.
#[derive(serde::Serialize)]
struct Failure {
    document: String,
    /// 0 when the whole object could not be read.
    page: u32,
    error: String,
}

pub async fn errors(store: &Store, layout: &Layout, json: bool) -> anyhow::Result<()> {
    let shards = folio_pipeline::live::load_live(store, layout).await?;
    let failures: Vec<Failure> = shards
        .iter()
        .flat_map(|shard| shard.rows.iter())
        .filter(|row| row.status == PageStatus::Failed)
        .map(|row| Failure {
            document: row.document.clone(),
            page: row.page,
            error: row.error.clone().unwrap_or_default(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&failures)?);
        return Ok(());
    }
    if failures.is_empty() {
        println!("no failed objects or pages");
    }
    for failure in &failures {
        let place = if failure.page == 0 {
            "whole object".to_owned()
        } else {
            format!("page {}", failure.page)
        };
        println!("{} ({place}): {}", failure.document, failure.error);
    }
    Ok(())
}
