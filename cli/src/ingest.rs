//! `folio ingest` and `folio delete`: local files to shards.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Instant, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use folio_pipeline::{DocumentVersion, Layout, PageEmbedder, ingest};
use folio_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

#[derive(Args)]
pub struct IngestArgs {
    /// Files or folders of scans (TIFF, PNG, JPEG, PDF; detected from content).
    /// A document's key is its path relative to the folder given, or its
    /// file name when a file is given.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Pages embedded per model call.
    #[arg(long, default_value_t = ingest::DEFAULT_BATCH)]
    pub batch: usize,
    /// Documents processed in parallel (default: one per CPU core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Maximum pixels per page (width x height); larger pages are rejected before decoding.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_page_pixels: Option<u64>,
    /// Maximum pages read from one document (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pages: Option<u32>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl IngestArgs {
    pub fn for_paths(paths: Vec<PathBuf>) -> IngestArgs {
        IngestArgs {
            paths,
            batch: ingest::DEFAULT_BATCH,
            jobs: None,
            max_page_pixels: None,
            max_pages: None,
            quiet: false,
        }
    }
}

/// A file to ingest and the document key it gets.
pub struct ScanFile {
    pub path: PathBuf,
    pub document: String,
}

/// File name extensions of scans: a file with one of these whose content
/// is not a known format is reported as an error; other unknown files
/// (READMEs, CSVs) are skipped.
const SCAN_EXTENSIONS: &[&str] = &["tif", "tiff", "png", "jpg", "jpeg", "pdf", "jp2", "jbig2", "fax", "g3", "g4"];

/// Files under `paths` with their document keys, sorted by key, and a
/// message for every path that could not be listed or whose key another
/// file already has (those files are left out, the others kept).
pub fn scan_files(paths: &[PathBuf]) -> (Vec<ScanFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => {
                problems.push(format!("{}: cannot read: {error}", path.display()));
                continue;
            }
        };
        if metadata.is_file() {
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            files.push(ScanFile {
                path: path.clone(),
                document: name,
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    problems.push(format!("{}: cannot list: {error}", error.path().unwrap_or(path).display()));
                    continue;
                }
            };
            if !entry.file_type().is_file() || entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let relative = entry.path().strip_prefix(path).expect("walkdir yields paths under its root");
            let document = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push(ScanFile {
                path: entry.path().to_path_buf(),
                document,
            });
        }
    }
    files.sort_by(|a, b| a.document.cmp(&b.document));
    let mut unique: Vec<ScanFile> = Vec::with_capacity(files.len());
    for file in files {
        match unique.last() {
            Some(kept) if kept.document == file.document && kept.path != file.path => problems.push(format!(
                "{}: skipped, because {} already has the document key {:?}; ingest the two folders into separate stores or rename one",
                file.path.display(),
                kept.path.display(),
                file.document
            )),
            Some(kept) if kept.document == file.document => {}
            _ => unique.push(file),
        }
    }
    (unique, problems)
}

fn looks_like_scan(path: &Path, bytes: &[u8]) -> bool {
    if folio_pages::detect_format(bytes).is_some() {
        return true;
    }
    let extension = path
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    SCAN_EXTENSIONS.contains(&extension.as_str())
}

/// Version and sequencer of a local file: the content hash names the
/// version (unchanged files map to the same shard, so re-running ingest
/// adds nothing), and the modification time orders versions like S3's
/// event sequencer.
fn local_version(path: &Path, document: &str, bytes: &[u8]) -> anyhow::Result<DocumentVersion> {
    let modified = std::fs::metadata(path)?
        .modified()?
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Ok(DocumentVersion {
        document: document.to_owned(),
        version: hex::encode(&Sha256::digest(bytes)[..16]),
        sequencer: format!("{modified:x}"),
    })
}

#[derive(Default)]
struct Totals {
    documents: usize,
    unchanged: usize,
    skipped_not_scans: Vec<String>,
    pages_embedded: u64,
    pages_failed: u64,
    failures: Vec<String>,
    /// Documents whose shard could not be written.
    not_stored: Vec<String>,
    embed_ms: f64,
    decode_ms: f64,
}

enum Outcome {
    Stored(ingest::EmbeddedObject),
    Unchanged,
    NotAScan,
    /// The file could not be read.
    Failed(String),
    /// The store rejected the write: nothing of this document was saved.
    NotStored(String),
}

pub fn run(runtime: &tokio::runtime::Runtime, store: &Store, layout: &Layout, args: &IngestArgs) -> anyhow::Result<()> {
    let (files, problems) = scan_files(&args.paths);

    if files.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        let listed: Vec<String> = args.paths.iter().map(|path| path.display().to_string()).collect();
        anyhow::bail!("no files found under {}", listed.join(", "));
    }
    let embedder = folio_model::embedder().context("cannot load the linked BiT model")?;
    let meta = folio_pipeline::shard_meta(&embedder);
    let mut limits = folio_pages::Limits::default();
    if let Some(pixels) = args.max_page_pixels {
        limits.max_page_pixels = pixels;
    }
    if let Some(pages) = args.max_pages {
        limits.max_pages = pages;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    eprintln!("model: {}", meta.model_id);
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} documents, {msg}, ETA {eta}")
            .expect("the progress template is valid"),
    );

    let started = Instant::now();
    let pages_done = Mutex::new(0u64);
    let (sender, receiver) = mpsc::channel::<&ScanFile>();
    for file in &files {
        sender.send(file).expect("the receiver is alive");
    }
    drop(sender);
    let receiver = Mutex::new(receiver);
    let totals = Mutex::new(Totals {
        failures: problems,
        ..Totals::default()
    });

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let next = receiver.lock().expect("no worker panics while holding the lock").recv();
                    let Ok(file) = next else { break };
                    let mut on_pages = |count: u32| {
                        let mut done = pages_done.lock().expect("no worker panics while holding the lock");
                        *done += u64::from(count);
                        let rate = *done as f64 / started.elapsed().as_secs_f64().max(1e-3);
                        progress.set_message(format!("{done} pages, {rate:.1} pages/s"));
                    };
                    let outcome = ingest_file(runtime, store, layout, &embedder, &meta, &limits, args.batch, file, &mut on_pages);
                    record(&mut totals.lock().expect("no worker panics while holding the lock"), file, outcome);
                    progress.inc(1);
                }
            });
        }
    });
    progress.finish_and_clear();

    let totals = totals.into_inner().expect("workers have ended");
    runtime.block_on(record_sources(store, &args.paths));
    print_summary(&totals, started.elapsed().as_secs_f64(), store);
    if !totals.not_stored.is_empty() {
        anyhow::bail!(
            "{} documents could not be written to {}:\n  {}",
            totals.not_stored.len(),
            store.location(),
            totals.not_stored.join("\n  ")
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn ingest_file(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    layout: &Layout,
    embedder: &dyn PageEmbedder,
    meta: &folio_shard::ShardMeta,
    limits: &folio_pages::Limits,
    batch: usize,
    file: &ScanFile,
    on_pages: &mut dyn FnMut(u32),
) -> Outcome {
    let bytes = match std::fs::read(&file.path) {
        Ok(bytes) => bytes,
        Err(error) => return Outcome::Failed(format!("{}: cannot read the file: {error}", file.document)),
    };
    if !looks_like_scan(&file.path, &bytes) {
        return Outcome::NotAScan;
    }
    let mut version = match local_version(&file.path, &file.document, &bytes) {
        Ok(version) => version,
        Err(error) => return Outcome::Failed(format!("{}: cannot read the file's time: {error}", file.document)),
    };
    let latest = match runtime.block_on(folio_pipeline::live::latest_entry(store, layout, &file.document)) {
        Ok(latest) => latest,
        Err(error) => return Outcome::NotStored(format!("{}: {error}", file.document)),
    };
    match latest {
        Some(latest) if latest.key == layout.shard_key(&version) => return Outcome::Unchanged,
        // Ingesting a deleted document again brings it back: its shard must sort after the tombstone.
        Some(latest) if latest.tombstone && latest.sequencer >= folio_pipeline::layout::pad_sequencer(&version.sequencer) => {
            version.sequencer = next_sequencer(&latest.sequencer);
        }
        _ => {}
    }
    let embedded = ingest::embed_object(embedder, limits, &version, bytes.into(), batch, on_pages);
    match runtime.block_on(ingest::store_object(store, layout, meta, &version, &embedded)) {
        Ok(stored) if stored.already_present => Outcome::Unchanged,
        Ok(_) => Outcome::Stored(embedded),
        Err(error) => Outcome::NotStored(format!("{}: {error}", file.document)),
    }
}

fn record(totals: &mut Totals, file: &ScanFile, outcome: Outcome) {
    match outcome {
        Outcome::Stored(embedded) => {
            totals.documents += 1;
            totals.pages_embedded += u64::from(embedded.pages_embedded);
            totals.pages_failed += u64::from(embedded.pages_failed());
            totals.embed_ms += embedded.embed_ms;
            totals.decode_ms += embedded.decode_ms;
            totals.failures.extend(embedded.object_error);
            totals.failures.extend(embedded.page_errors);
        }
        Outcome::Unchanged => totals.unchanged += 1,
        Outcome::NotAScan => totals.skipped_not_scans.push(file.document.clone()),
        Outcome::Failed(reason) => totals.failures.push(reason),
        Outcome::NotStored(reason) => totals.not_stored.push(reason),
    }
}

fn print_summary(totals: &Totals, seconds: f64, store: &Store) {
    println!(
        "ingested {} documents: {} pages embedded, {} pages failed, {} documents unchanged since the last run; {:.1} s ({:.1} pages/s)",
        totals.documents,
        totals.pages_embedded,
        totals.pages_failed,
        totals.unchanged,
        seconds,
        totals.pages_embedded as f64 / seconds.max(1e-3)
    );
    if totals.pages_embedded > 0 {
        println!(
            "time per page: decode {:.1} ms, embed {:.1} ms (summed over workers)",
            totals.decode_ms / totals.pages_embedded as f64,
            totals.embed_ms / totals.pages_embedded as f64
        );
    }
    if !totals.skipped_not_scans.is_empty() {
        println!(
            "skipped {} files that are not scans: {}",
            totals.skipped_not_scans.len(),
            totals.skipped_not_scans.join(", ")
        );
    }
    if !totals.failures.is_empty() {
        println!("{} failures:", totals.failures.len());
        for failure in &totals.failures {
            println!("  {failure}");
        }
    }
    println!("shards written to {}", store.location());
}

/// Key of the list of local folders that were ingested; `folio clusters`
/// reads thumbnails from them, because local scans are not copied into the store.
const SOURCES_KEY: &str = "local/sources.json";

/// Adds the ingested folders to the store's list of local scan folders.
async fn record_sources(store: &Store, paths: &[PathBuf]) {
    let mut sources = read_sources(store).await;
    for path in paths {
        let folder = if path.is_dir() { path.clone() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
        if let Ok(folder) = folder.canonicalize() {
            if !sources.contains(&folder) {
                sources.push(folder);
            }
        }
    }
    let body = serde_json::to_vec_pretty(&sources).expect("paths serialise");
    if let Err(error) = store.put(SOURCES_KEY, body.into(), folio_store::PutMode::Overwrite).await {
        eprintln!("warning: cannot record the scanned folders for thumbnails: {error}");
    }
}

/// Reads the local folders recorded by earlier `folio ingest` runs.
pub async fn read_sources(store: &Store) -> Vec<PathBuf> {
    match store.get(SOURCES_KEY).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

pub fn delete(runtime: &tokio::runtime::Runtime, store: &Store, layout: &Layout, documents: &[String]) -> anyhow::Result<()> {
    let identity = folio_model::identity();
    let meta = folio_shard::ShardMeta::new(identity.to_string(), identity.dimensions, folio_pipeline::PREPROCESSING);
    let mut missing = Vec::new();
    for document in documents {
        let latest = runtime.block_on(folio_pipeline::live::latest_entry(store, layout, document))?;
        let Some(latest) = latest.filter(|entry| !entry.tombstone) else {
            eprintln!("error: {document}: not found in the store (`folio status` counts the stored documents)");
            missing.push(document.as_str());
            continue;
        };
        // The tombstone must sort after the live shard: one past its sequencer.
        let sequencer = next_sequencer(&latest.sequencer);
        let version = DocumentVersion {
            document: document.clone(),
            version: "deleted".into(),
            sequencer,
        };
        runtime.block_on(ingest::record_deletion(store, layout, &meta, &version))?;
        println!("{document}: deleted");
    }
    if !missing.is_empty() {
        anyhow::bail!("{} of {} documents not found, nothing deleted for: {}", missing.len(), documents.len(), missing.join(", "));
    }
    Ok(())
}

/// Returns the hex sequencer one greater than `sequencer`, keeping its width.
fn next_sequencer(sequencer: &str) -> String {
    let mut digits: Vec<u8> = sequencer.bytes().collect();
    for digit in digits.iter_mut().rev() {
        match *digit {
            b'9' => {
                *digit = b'A';
                return String::from_utf8(digits).expect("hex digits are ASCII");
            }
            b'F' | b'f' => *digit = b'0',
            other => {
                *digit = other + 1;
                return String::from_utf8(digits).expect("hex digits are ASCII");
            }
        }
    }
    format!("1{}", String::from_utf8(digits).expect("hex digits are ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_sequencer_carries() {
        assert_eq!(next_sequencer("0009"), "000A");
        assert_eq!(next_sequencer("00AF"), "00B0");
        assert_eq!(next_sequencer("FF"), "100");
    }
}
