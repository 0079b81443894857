//! `folio`: Folio on one machine, over a local folder or an S3 bucket.
//!
//! The commands run the same library code as the Lambda functions:
//! `ingest` embeds scans into shards, `index` builds the index snapshot,
//! `search` answers "which documents look like this page?", `clusters`
//! summarises what kinds of documents the store holds, `evaluate` measures
//! retrieval on a labelled set and `serve` runs the query API locally.

mod clusters;
mod evaluate;
mod ingest;
mod output;
mod search;
mod serve;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use folio_pipeline::Layout;
use folio_store::Store;

#[derive(Parser)]
#[command(name = "folio", version, about = "Explore large collections of scanned business documents")]
struct Cli {
    /// Where shards, index snapshots and cluster summaries live: a local
    /// directory, or s3://bucket/prefix (standard AWS configuration;
    /// AWS_ENDPOINT_URL selects an S3-compatible server).
    #[arg(long, global = true, env = "FOLIO_STORE", default_value = "folio-store")]
    store: String,

    /// Log filter (tracing's EnvFilter syntax), for example "info" or "folio_pipeline=debug".
    #[arg(long, global = true, env = "RUST_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed every page of every scan under the given files or folders and write shards.
    Ingest(ingest::IngestArgs),
    /// Write tombstones for documents, so they drop out of search and clusters.
    Delete {
        /// Document keys, as `folio ingest` named them (paths relative to the folder given).
        #[arg(required = true)]
        documents: Vec<String>,
    },
    /// Build the usearch index snapshot from the live shards and make it current.
    Index(IndexArgs),
    /// Find the documents that look most like a scan or a stored document.
    Search(search::SearchArgs),
    /// Compute and print the cluster summary (kinds of documents in the store).
    Clusters(clusters::ClusterArgs),
    /// Measure retrieval quality against labelled documents.
    Evaluate(evaluate::EvaluateArgs),
    /// Serve the query API (the same handler as the query function) on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Print counts of documents, pages and errors, and the snapshot's age.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List objects that could not be read and pages that failed, with the reason.
    Errors {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the main job on the sample scans: ingest, index, search and clusters.
    Demo {
        /// Folder of scans to use.
        #[arg(default_value = "samples")]
        scans: PathBuf,
    },
}

#[derive(Args)]
struct IndexArgs {
    /// Scalar type stored in the index: f16 (default; half the size of f32,
    /// same recall on page embeddings), f32 or i8.
    #[arg(long, default_value = "f16")]
    quantization: String,
    /// Maximum vectors in one index part; larger snapshots are split and searched part by part.
    #[arg(long)]
    max_part_vectors: Option<usize>,
}

/// Prints errors with their causes but without a backtrace: users see
/// the reason, even where RUST_BACKTRACE is set in the environment.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let store = runtime
        .block_on(Store::open(&cli.store))
        .with_context(|| format!("cannot open the store {}", cli.store))?;
    let layout = Layout::default();

    match cli.command {
        Command::Ingest(args) => ingest::run(&runtime, &store, &layout, &args),
        Command::Delete { documents } => ingest::delete(&runtime, &store, &layout, &documents),
        Command::Index(args) => runtime.block_on(index(&store, &layout, &args)),
        Command::Search(args) => runtime.block_on(search::run(&store, &layout, &args)),
        Command::Clusters(args) => runtime.block_on(clusters::run(&store, &layout, &args)),
        Command::Evaluate(args) => runtime.block_on(evaluate::run(&store, &layout, &args)),
        Command::Serve(args) => runtime.block_on(serve::run(store, layout, &args)),
        Command::Status { json } => runtime.block_on(output::status(&store, &layout, json)),
        Command::Errors { json } => runtime.block_on(output::errors(&store, &layout, json)),
        Command::Demo { scans } => demo(&runtime, &store, &layout, scans),
    }
}

/// Index options from the command line.
fn index_options(args: &IndexArgs) -> anyhow::Result<folio_index::IndexOptions> {
    let quantisation = args
        .quantization
        .parse()
        .map_err(|error| anyhow::anyhow!("--quantization: {error}"))?;
    Ok(folio_index::IndexOptions {
        quantisation,
        max_part_vectors: args.max_part_vectors,
        ..folio_index::IndexOptions::default()
    })
}

async fn index(store: &Store, layout: &Layout, args: &IndexArgs) -> anyhow::Result<()> {
    let options = index_options(args)?;
    let identity = folio_model::identity();
    let manifest = folio_pipeline::snapshot::build_snapshot(store, layout, &identity.to_string(), identity.dimensions, &options)
        .await
        .context("index build failed")?;
    let pruned = folio_pipeline::snapshot::prune_snapshots(store, layout, 2).await?
        + folio_pipeline::snapshot::prune_superseded_shards(store, layout, &manifest).await?;
    output::print_manifest(&manifest);
    if pruned > 0 {
        println!("removed {pruned} files of older snapshots and replaced shards");
    }
    Ok(())
}

fn demo(runtime: &tokio::runtime::Runtime, store: &Store, layout: &Layout, scans: PathBuf) -> anyhow::Result<()> {
    anyhow::ensure!(
        scans.is_dir(),
        "{} is not a folder of scans; run from the repository root or pass a folder",
        scans.display()
    );
    println!("== folio ingest {}", scans.display());
    ingest::run(runtime, store, layout, &ingest::IngestArgs::for_paths(vec![scans.clone()]))?;
    println!("\n== folio index");
    runtime.block_on(index(
        store,
        layout,
        &IndexArgs {
            quantization: "f16".into(),
            max_part_vectors: None,
        },
    ))?;
    let query = ingest::scan_files(std::slice::from_ref(&scans))
        .0
        .into_iter()
        .find(|file| std::fs::read(&file.path).is_ok_and(|bytes| folio_pages::detect_format(&bytes).is_some()))
        .context("the sample folder has no scans")?;
    println!("\n== folio search {}", query.path.display());
    runtime.block_on(search::run(store, layout, &search::SearchArgs::for_file(query.path)))?;
    println!("\n== folio clusters");
    runtime.block_on(clusters::run(store, layout, &clusters::ClusterArgs::default()))?;
    Ok(())
}
