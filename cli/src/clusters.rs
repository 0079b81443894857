//! `folio clusters`: what kinds of documents the store holds.

use anyhow::Context;
use clap::Args;
use folio_clusters::{ClusterParams, ClusterSummary, KChoice};
use folio_pipeline::Layout;
use folio_pipeline::clusters::ScanSource;
use folio_store::Store;

#[derive(Args)]
pub struct ClusterArgs {
    /// Number of clusters; default: chosen by silhouette score between --min-k and --max-k.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub k: Option<usize>,
    /// Smallest k tried when choosing by silhouette.
    #[arg(long, default_value_t = 2)]
    pub min_k: usize,
    /// Largest k tried when choosing by silhouette.
    #[arg(long, default_value_t = 12)]
    pub max_k: usize,
    /// k-means restarts (k-means++ seeding); the run with the lowest inertia is kept.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub n_init: usize,
    /// Seed for sampling and k-means++; the same input and seed give the same summary.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cosine similarity at or above which two pages count as near-duplicates
    /// (default: the library's measured default).
    #[arg(long, value_parser = parse_threshold)]
    pub near_duplicate_threshold: Option<f32>,
    /// Print the summary JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Default for ClusterArgs {
    /// Returns the values `folio clusters` uses without options, read from the clap
    /// attributes above so that `folio demo` cannot drift from them.
    fn default() -> Self {
        use clap::FromArgMatches;
        let matches = ClusterArgs::augment_args(clap::Command::new("clusters")).get_matches_from(["clusters"]);
        ClusterArgs::from_arg_matches(&matches).expect("the default arguments parse")
    }
}

fn parse_threshold(text: &str) -> Result<f32, String> {
    let value: f32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!("{value} is outside (0, 1], the useful range of cosine similarity"))
    }
}

pub async fn run(store: &Store, layout: &Layout, args: &ClusterArgs) -> anyhow::Result<()> {
    let identity = folio_model::identity();
    let mut params = ClusterParams {
        n_init: args.n_init,
        seed: args.seed,
        ..ClusterParams::default()
    };
    if let Some(threshold) = args.near_duplicate_threshold {
        params.near_duplicate_threshold = threshold;
    }
    params.k = match args.k {
        Some(k) => KChoice::Given { k },
        None => {
            anyhow::ensure!(args.min_k >= 2, "--min-k {} is invalid: the silhouette score needs at least 2 clusters", args.min_k);
            anyhow::ensure!(
                args.min_k <= args.max_k,
                "--min-k {} is larger than --max-k {}; give a range such as --min-k 2 --max-k 12",
                args.min_k,
                args.max_k
            );
            KChoice::Silhouette {
                min: args.min_k,
                max: args.max_k,
            }
        }
    };
    let sources = crate::ingest::read_sources(store).await;
    for folder in sources.iter().filter(|folder| !folder.is_dir()) {
        eprintln!(
            "warning: scan folder {} (recorded by `folio ingest`) no longer exists, so contact sheets will lack its pages; ingest it again from its new place",
            folder.display()
        );
    }
    let scans = if sources.is_empty() { ScanSource::Store } else { ScanSource::Folders(sources) };
    let (summary, latest) = folio_pipeline::clusters::build_clusters(store, layout, &identity.to_string(), &params, &scans)
        .await
        .context("cluster summary failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    print_summary(&summary);
    match store.local_root() {
        Some(root) => println!("report: {}", root.join(&latest.report).display()),
        None => println!("report: {}/{}", store.location().trim_end_matches('/'), latest.report),
    }
    Ok(())
}

fn print_summary(summary: &ClusterSummary) {
    println!("{}", crate::output::provenance(&summary.model_id, Some(&summary.snapshot_id), None));
    let parameters = &summary.parameters;
    println!(
        "{} pages of {} documents in {} clusters (k {}), PCA {} -> {} dims keeping {:.1}% of variance, silhouette {:.3}{}",
        summary.page_count,
        summary.document_count,
        summary.clusters.len(),
        match parameters.k_choice {
            KChoice::Given { .. } => "given".to_owned(),
            KChoice::Silhouette { min, max } => format!("chosen by silhouette in {min}..={max}"),
        },
        parameters.input_dims,
        parameters.pca_dims,
        parameters.variance_kept * 100.0,
        summary.silhouette.overall,
        if summary.sampled { format!(" (fitted on a sample of {})", summary.sample_size) } else { String::new() }
    );
    println!("{:>3}  {:>5}  {:>5}  {:>8}  typical page (medoid)", "id", "pages", "docs", "cohesion");
    for cluster in &summary.clusters {
        println!(
            "{:>3}  {:>5}  {:>5}  {:>8}  {} p{}",
            cluster.id,
            cluster.page_count,
            cluster.document_count,
            cluster.cohesion.map_or("-".to_owned(), |value| format!("{value:.3}")),
            cluster.medoid.document,
            cluster.medoid.page
        );
    }
    let near = &summary.near_duplicates;
    if near.computed {
        let pages: usize = near.groups.iter().map(Vec::len).sum();
        println!(
            "near-duplicates (cosine >= {}, {}): {} groups, {} pages",
            near.threshold,
            near.scope,
            near.groups.len(),
            pages
        );
        for group in near.groups.iter().take(5) {
            let members: Vec<String> = group.iter().take(4).map(|page| format!("{} p{}", page.document, page.page)).collect();
            let more = group.len().saturating_sub(members.len());
            let suffix = if more > 0 { format!(" and {more} more") } else { String::new() };
            println!("  {}{}", members.join(", "), suffix);
        }
    } else {
        println!("near-duplicates: not computed (more pages than the search allows)");
    }
    if let Some(drift) = &summary.drift {
        println!("since the previous summary: {}", serde_json::to_string(drift).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `folio demo` used derived defaults (0 for every number) and failed with "--min-k 0 is
    /// invalid".
    #[test]
    fn demo_defaults_match_command_line() {
        let args = ClusterArgs::default();
        assert_eq!(args.min_k, 2);
        assert_eq!(args.max_k, 12);
        assert_eq!(args.n_init, 10);
        assert_eq!(args.k, None);
    }
}
