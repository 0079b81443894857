//! `folio search`: nearest documents to a scan or a stored document.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use folio_pipeline::search::{SearchEngine, SearchResults};
use folio_pipeline::{Layout, PageEmbedder};
use folio_store::Store;

#[derive(Args)]
pub struct SearchArgs {
    /// Scan to search with (every page is a query page).
    #[arg(required_unless_present = "document", conflicts_with = "document")]
    pub file: Option<PathBuf>,
    /// Stored document key to search with (its own pages are left out of the results).
    #[arg(long)]
    pub document: Option<String>,
    /// Search with this page only (1-based); default: every page.
    #[arg(long)]
    pub page: Option<u32>,
    /// Number of documents to return (1 to 100).
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub k: u32,
    /// Leave out pages whose cosine similarity is below this value (-1 to 1).
    #[arg(long, default_value_t = -1.0, value_parser = parse_min_score)]
    pub min_score: f32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_min_score(text: &str) -> Result<f32, String> {
    let value: f32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (-1.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside -1 to 1, the range of cosine similarity"))
    }
}

impl SearchArgs {
    pub fn for_file(file: PathBuf) -> SearchArgs {
        SearchArgs {
            file: Some(file),
            document: None,
            page: None,
            k: 5,
            min_score: -1.0,
            json: false,
        }
    }
}

/// Decodes and embeds every page of a scan as query vectors; a page that
/// cannot be decoded is reported and left out.
pub fn embed_query_file(embedder: &dyn PageEmbedder, path: &std::path::Path, page: Option<u32>) -> anyhow::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let pages = folio_pages::open(&name, bytes, &folio_pages::Limits::default())?;
    let mut vectors = Vec::new();
    let mut last_page = 0;
    for decoded in pages {
        match decoded {
            Ok(decoded) => {
                last_page = last_page.max(decoded.number);
                if page.is_some_and(|wanted| wanted != decoded.number) {
                    continue;
                }
                let embedded = embedder
                    .embed_pages(&[&decoded.image])
                    .map_err(|error| anyhow::anyhow!("{name} page {}: {error}", decoded.number))?;
                vectors.extend(embedded);
            }
            Err(error) => {
                last_page = last_page.max(error.page.unwrap_or(0));
                eprintln!("warning: {error}");
            }
        }
    }
    if let Some(wanted) = page
        && wanted > last_page
    {
        let noun = if last_page == 1 { "page" } else { "pages" };
        anyhow::bail!("{name} has {last_page} {noun}, so --page {wanted} does not exist; give a page from 1 to {last_page}");
    }
    anyhow::ensure!(!vectors.is_empty(), "{name}: no page could be decoded and embedded to search with (see the warnings above)");
    Ok(vectors)
}

pub async fn run(store: &Store, layout: &Layout, args: &SearchArgs) -> anyhow::Result<()> {
    let identity = folio_model::identity();
    let model_id = identity.to_string();
    let engine = SearchEngine::open(store, layout, &model_id, identity.dimensions).await?;

    let (queries, exclude) = match (&args.file, &args.document) {
        (Some(file), _) => {
            let embedder = folio_model::embedder().context("cannot load the linked BiT model")?;
            (embed_query_file(&embedder, file, args.page)?, None)
        }
        (None, Some(document)) => (
            engine.document_vectors(store, document, args.page).await?,
            Some(document.as_str()),
        ),
        (None, None) => anyhow::bail!("give a FILE or --document KEY to search with"),
    };
    let results = engine.search(&queries, args.k as usize, args.min_score, exclude)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_results(&results, queries.len());
    }
    Ok(())
}

pub fn print_results(results: &SearchResults, query_pages: usize) {
    println!("{}", crate::output::provenance(&results.model_id, results.snapshot_id.as_deref(), results.snapshot_created_at));
    if results.fresh_pages > 0 {
        println!("({} pages newer than the snapshot were searched exactly)", results.fresh_pages);
    }
    if results.documents.is_empty() {
        println!("no documents found");
        return;
    }
    println!("{:>4}  {:>6}  document  [best pages: page (score, query page)]", "rank", "score");
    for (rank, document) in results.documents.iter().enumerate() {
        let pages: Vec<String> = document
            .pages
            .iter()
            .take(3)
            .map(|page| {
                if query_pages > 1 {
                    format!("p{} ({:.3}, q{})", page.page, page.score, page.query_page)
                } else {
                    format!("p{} ({:.3})", page.page, page.score)
                }
            })
            .collect();
        println!("{:>4}  {:>6.3}  {}  [{}]", rank + 1, document.score, document.document, pages.join(", "));
    }
}
