//! Measures the memory of one ingest invocation: uploads a file to an
//! S3-compatible server, loads the model, resets the peak RSS, runs the
//! handler on the object's upload event and prints the peaks as JSON.
//!
//! ```text
//! moto_server -H 127.0.0.1 -p 5000 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!     AWS_REGION=us-east-1 target/debug/examples/ingest_memory FILE
//! AWS_ENDPOINT_URL=... target/debug/examples/ingest_memory --tiff-pages 120   # synthetic 1 GB TIFF
//! ```
//!
//! `FOLIO_SPILL_BYTES` and `FOLIO_MAX_OBJECT_BYTES` apply as in the function.
//! Peaks come from sampling `/proc/self/status` every 5 ms (RssAnon, RssFile)
//! and from VmHWM after `clear_refs`, so a peak shorter than that can be missed
//! by the samples, but not by VmHWM.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use folio_pipeline::Layout;
use folio_store::{Access, Store};
use ingest::{ACCESS_JSON, Ingest};

const BUCKET: &str = "folio-memory";

/// Reads one `kB` field of `/proc/self/status`, in bytes.
fn status_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn read_status() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default()
}

/// Writes an uncompressed 8-bit grayscale TIFF of `pages` US Letter pages at
/// 300 dpi (2550x3300, 8.4 MB each) to `path`, one page at a time.
fn write_tiff(path: &Path, pages: u32) -> std::io::Result<u64> {
    const WIDTH: u32 = 2550;
    const HEIGHT: u32 = 3300;
    let page_bytes = WIDTH as usize * HEIGHT as usize;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut offset: u64 = 8;
    file.write_all(b"II\x2a\x00")?;
    file.write_all(&8u32.to_le_bytes())?;
    let mut row = vec![0u8; WIDTH as usize];
    for page in 0..pages {
        // IFD first, then the strip: each IFD's next-IFD pointer is known
        // before the page's pixels are written.
        let entries: [(u16, u16, u32); 9] = [
            (256, 4, WIDTH),
            (257, 4, HEIGHT),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 0),
            (277, 3, 1),
            (278, 4, HEIGHT),
            (279, 4, page_bytes as u32),
        ];
        let ifd_bytes = 2 + entries.len() as u64 * 12 + 4;
        let strip_offset = offset + ifd_bytes;
        let next_ifd = if page + 1 < pages { strip_offset + page_bytes as u64 } else { 0 };
        file.write_all(&(entries.len() as u16).to_le_bytes())?;
        for (tag, kind, value) in entries {
            let value = if tag == 273 { strip_offset as u32 } else { value };
            file.write_all(&tag.to_le_bytes())?;
            file.write_all(&kind.to_le_bytes())?;
            file.write_all(&1u32.to_le_bytes())?;
            file.write_all(&value.to_le_bytes())?;
        }
        file.write_all(&(next_ifd as u32).to_le_bytes())?;
        let period = 7 + (page as usize % 13) * 3;
        for y in 0..HEIGHT as usize {
            for (x, pixel) in row.iter_mut().enumerate() {
                *pixel = if (x + y * (page as usize % 4)) % period < period / 3 { 0 } else { 255 };
            }
            file.write_all(&row)?;
        }
        offset = strip_offset + page_bytes as u64;
    }
    file.flush()?;
    Ok(offset)
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "ingest-memory");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| "set AWS_ENDPOINT_URL to a running moto_server")?;
    let scratch = tempfile::tempdir()?;
    let (path, name): (PathBuf, String) = match args.as_slice() {
        [flag, pages] if flag == "--tiff-pages" => {
            let pages: u32 = pages.parse().map_err(|_| format!("invalid page count {pages:?}"))?;
            let path = scratch.path().join(format!("synthetic-{pages}.tif"));
            write_tiff(&path, pages)?;
            (path, format!("synthetic-{pages}.tif"))
        }
        [file] => {
            let path = PathBuf::from(file);
            let name = path.file_name().ok_or("FILE has no file name")?.to_string_lossy().into_owned();
            (path, name)
        }
        _ => return Err("usage: ingest_memory FILE | --tiff-pages N".into()),
    };
    let size = std::fs::metadata(&path)?.len();

    let client = s3_client(&endpoint);
    let _ = client.create_bucket().bucket(BUCKET).send().await;
    let key = format!("scans/{name}");
    let uploaded = client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_path(&path).await?)
        .send()
        .await?;
    drop(scratch);

    let started = Instant::now();
    let embedder = folio_model::embedder()?;
    let model_ms = started.elapsed().as_millis();
    let after_model = read_status();

    // Reset VmHWM so the peak covers the invocation only (Linux 4.0 and later).
    std::fs::write("/proc/self/clear_refs", "5")?;
    let stop = Arc::new(AtomicBool::new(false));
    let peak_anon = Arc::new(AtomicU64::new(0));
    let peak_file = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak_anon, peak_file) = (stop.clone(), peak_anon.clone(), peak_file.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let status = read_status();
                peak_anon.fetch_max(status_field(&status, "RssAnon:"), Ordering::Relaxed);
                peak_file.fetch_max(status_field(&status, "RssFile:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let layout = Layout::default();
    let access = Access::from_json(ACCESS_JSON, |variable| layout.prefix_for_variable(variable))?;
    let spill = ingest::spill_from_env()?;
    let ingest = Ingest {
        store_for_bucket: Box::new(move |bucket| {
            Store::from_s3_client(client.clone(), bucket, "")
                .with_access(access.clone())
                .with_spill(spill.clone())
        }),
        layout,
        embedder: Arc::new(embedder),
        limits: folio_pages::Limits::default(),
        batch: folio_pipeline::ingest::DEFAULT_BATCH,
    };
    let record = folio_e2e::event_record(
        BUCKET,
        "ObjectCreated:Put",
        &key,
        size as i64,
        uploaded.e_tag().unwrap_or_default().trim_matches('"'),
        uploaded.version_id(),
        // A new sequencer per run, so a repeated run is not skipped as a duplicate event.
        &format!("{:020}", std::time::UNIX_EPOCH.elapsed()?.as_nanos()),
    );
    let event: S3Event = serde_json::from_value(folio_e2e::event(vec![record]))?;
    let started = Instant::now();
    let reports = ingest.handle_event(&event).await?;
    let invocation_ms = started.elapsed().as_millis();
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler thread does not panic");
    let end = read_status();

    let mib = |bytes: u64| (bytes as f64 / 1048576.0 * 10.0).round() / 10.0;
    let summary = serde_json::json!({
        "object": name,
        "object_mib": mib(size),
        "report": reports,
        "model_load_ms": model_ms,
        "invocation_ms": invocation_ms,
        "rss_after_model_mib": mib(status_field(&after_model, "VmRSS:")),
        "anon_after_model_mib": mib(status_field(&after_model, "RssAnon:")),
        "invocation_peak_rss_mib": mib(status_field(&end, "VmHWM:")),
        "invocation_peak_anon_mib": mib(peak_anon.load(Ordering::Relaxed)),
        "invocation_peak_file_mib": mib(peak_file.load(Ordering::Relaxed)),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
