//! `folio evaluate`: retrieval quality on labelled documents.
//!
//! - Groups (`path,group[,kind]`): pages that belong together, such as the
//!   pages of one document or one page in several encodings. For each
//!   member, the other members should come first. Recall@k here is the
//!   share of members for which at least one other member of the group is
//!   among the first k results (the Recall@K of image-retrieval
//!   benchmarks), and the mean share of the other members found in the
//!   first k is printed beside it.
//! - Labels (`path,label`): a class per document. Precision@10 is the share
//!   of the 10 nearest labelled documents that have the query's label.
//!
//! Paths in the CSVs are document keys: paths relative to the folder given
//! to `folio ingest`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use folio_pipeline::Layout;
use folio_pipeline::search::{SearchEngine, SearchError};
use folio_store::Store;

#[derive(Args)]
pub struct EvaluateArgs {
    /// CSV with columns path,label: the class of each document.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// CSV with columns path,group: documents that belong together.
    #[arg(long)]
    pub groups: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads the first two columns of a CSV with a header row.
fn read_pairs(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut pairs = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} line {}: invalid CSV", path.display(), line + 2))?;
        let (Some(key), Some(value)) = (record.get(0), record.get(1)) else {
            anyhow::bail!("{} line {}: expected at least two columns", path.display(), line + 2);
        };
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

#[derive(Debug, Default, serde::Serialize)]
pub struct GroupQuality {
    pub groups: usize,
    pub queries: usize,
    /// Queries whose document is not in the store.
    pub missing: Vec<String>,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mean_share_found_at_5: f64,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct LabelQuality {
    pub labels: usize,
    pub queries: usize,
    pub missing: Vec<String>,
    pub precision_at_10: f64,
    /// Documents left out because no other document has their label.
    pub singletons: Vec<String>,
    /// Precision@10 per label.
    pub per_label: BTreeMap<String, f64>,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    model_id: String,
    snapshot_id: Option<String>,
    groups: Option<GroupQuality>,
    labels: Option<LabelQuality>,
}

pub async fn run(store: &Store, layout: &Layout, args: &EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.labels.is_some() || args.groups.is_some(),
        "give --labels CSV, --groups CSV or both"
    );
    let identity = folio_model::identity();
    let engine = SearchEngine::open(store, layout, &identity.to_string(), identity.dimensions).await?;

    let groups = match &args.groups {
        Some(path) => Some(evaluate_groups(store, &engine, &read_pairs(path)?).await?),
        None => None,
    };
    let labels = match &args.labels {
        Some(path) => Some(evaluate_labels(store, &engine, &read_pairs(path)?).await?),
        None => None,
    };
    for (name, queries) in [
        ("--groups", groups.as_ref().map(|quality| quality.queries)),
        ("--labels", labels.as_ref().map(|quality| quality.queries)),
    ] {
        if queries == Some(0) {
            anyhow::bail!("{name}: no listed document with another member is in the store; check that the CSV paths are document keys (paths relative to the folder given to folio ingest)");
        }
    }
    let report = Report {
        model_id: engine.model_id().to_owned(),
        snapshot_id: engine.manifest().map(|manifest| manifest.snapshot_id.clone()),
        groups,
        labels,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Query vectors of a document, or `None` when it is not in the store.
async fn query_vectors(store: &Store, engine: &SearchEngine, document: &str) -> anyhow::Result<Option<Vec<Vec<f32>>>> {
    match engine.document_vectors(store, document, None).await {
        Ok(vectors) => Ok(Some(vectors)),
        Err(SearchError::UnknownDocument { .. } | SearchError::NoEmbeddedPages { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

pub async fn evaluate_groups(store: &Store, engine: &SearchEngine, pairs: &[(String, String)]) -> anyhow::Result<GroupQuality> {
    let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
    for (document, group) in pairs {
        members.entry(group.as_str()).or_default().push(document.as_str());
    }
    let mut quality = GroupQuality {
        groups: members.values().filter(|group| group.len() > 1).count(),
        ..GroupQuality::default()
    };
    let (mut hits_at_1, mut hits_at_5, mut share_at_5) = (0usize, 0usize, 0.0f64);
    for (document, group) in pairs {
        let others: Vec<&str> = members[group.as_str()].iter().copied().filter(|other| other != document).collect();
        if others.is_empty() {
            continue;
        }
        let Some(queries) = query_vectors(store, engine, document).await? else {
            quality.missing.push(document.clone());
            continue;
        };
        let results = engine.search(&queries, 5, -1.0, Some(document))?;
        let ranked: Vec<&str> = results.documents.iter().map(|found| found.document.as_str()).collect();
        quality.queries += 1;
        if ranked.first().is_some_and(|first| others.contains(first)) {
            hits_at_1 += 1;
        }
        let found_at_5 = ranked.iter().filter(|found| others.contains(found)).count();
        if found_at_5 > 0 {
            hits_at_5 += 1;
        }
        share_at_5 += found_at_5 as f64 / others.len().min(5) as f64;
    }
    let queries = quality.queries.max(1) as f64;
    quality.recall_at_1 = hits_at_1 as f64 / queries;
    quality.recall_at_5 = hits_at_5 as f64 / queries;
    quality.mean_share_found_at_5 = share_at_5 / queries;
    Ok(quality)
}

pub async fn evaluate_labels(store: &Store, engine: &SearchEngine, pairs: &[(String, String)]) -> anyhow::Result<LabelQuality> {
    let labels: HashMap<&str, &str> = pairs.iter().map(|(document, label)| (document.as_str(), label.as_str())).collect();
    let mut quality = LabelQuality {
        labels: labels.values().collect::<std::collections::HashSet<_>>().len(),
        ..LabelQuality::default()
    };
    let mut label_sizes: HashMap<&str, usize> = HashMap::new();
    for label in labels.values() {
        *label_sizes.entry(label).or_default() += 1;
    }
    let mut per_label: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut total = 0.0;
    for (document, label) in pairs {
        // A document alone in its class has no relevant document to find.
        if label_sizes.get(label.as_str()).copied().unwrap_or(0) < 2 {
            quality.singletons.push(document.clone());
            continue;
        }
        let Some(queries) = query_vectors(store, engine, document).await? else {
            quality.missing.push(document.clone());
            continue;
        };
        // Unlabelled documents may rank in between: fetch the maximum and keep the labelled ones.
        let results = engine.search(&queries, 100, -1.0, Some(document))?;
        let neighbours: Vec<&str> = results
            .documents
            .iter()
            .filter_map(|found| labels.get(found.document.as_str()).copied())
            .take(10)
            .collect();
        if neighbours.is_empty() {
            continue;
        }
        let precision = neighbours.iter().filter(|found| **found == label.as_str()).count() as f64 / neighbours.len() as f64;
        total += precision;
        quality.queries += 1;
        let entry = per_label.entry(label.clone()).or_default();
        entry.0 += precision;
        entry.1 += 1;
    }
    quality.precision_at_10 = total / quality.queries.max(1) as f64;
    quality.per_label = per_label
        .into_iter()
        .map(|(label, (sum, count))| (label, sum / count as f64))
        .collect();
    Ok(quality)
}

fn print_report(report: &Report) {
    println!("{}", crate::output::provenance(&report.model_id, report.snapshot_id.as_deref(), None));
    if let Some(groups) = &report.groups {
        println!("\ngroups: {} groups, {} query documents", groups.groups, groups.queries);
        println!("  recall@1 {:.3}   recall@5 {:.3}   mean share of other members in top 5 {:.3}",
            groups.recall_at_1, groups.recall_at_5, groups.mean_share_found_at_5);
        if !groups.missing.is_empty() {
            println!("  not in the store: {}", groups.missing.join(", "));
        }
    }
    if let Some(labels) = &report.labels {
        println!("\nlabels: {} classes, {} query documents, precision@10 {:.3}", labels.labels, labels.queries, labels.precision_at_10);
        for (label, precision) in &labels.per_label {
            println!("  {label:<24} {precision:.3}");
        }
        if !labels.singletons.is_empty() {
            println!("  left out, alone in their class: {}", labels.singletons.join(", "));
        }
        if !labels.missing.is_empty() {
            println!("  not in the store: {}", labels.missing.join(", "));
        }
    }
}
