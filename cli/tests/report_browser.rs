//! The cluster report opened in headless Chromium: every picture loads, a removed picture
//! is reported as missing, and a screenshot shows the map.
//!
//! Scans come from the corpus folder beside the workspace when it exists, else from
//! `samples/`. Chromium is `$FOLIO_CHROMIUM` or `chromium` on the PATH.
//! Without it the test prints why and passes, unless FOLIO_REQUIRE_CHROMIUM=1.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Maximum time of one Chromium run; the test kills Chromium and fails after it.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);
const WINDOW_WIDTH: u32 = 1280;
const WINDOW_HEIGHT: u32 = 1800;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Returns the folder of scans to ingest: the corpus when present, else the sample scans.
fn scans_folder() -> PathBuf {
    let corpus = workspace_root().join("../shared/corpus");
    if corpus.is_dir() {
        return corpus;
    }
    println!("corpus folder {} is absent: using samples/ instead", corpus.display());
    workspace_root().join("samples")
}

/// Finds Chromium, or returns `None` after printing why the test is skipped. Panics when
/// FOLIO_REQUIRE_CHROMIUM=1 and Chromium is missing.
fn find_chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("FOLIO_CHROMIUM") {
        Some(path) => vec![PathBuf::from(path)],
        None => std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|folder| folder.join("chromium")).collect())
            .unwrap_or_default(),
    };
    if let Some(found) = candidates.into_iter().find(|path| path.is_file()) {
        return Some(found);
    }
    let required = std::env::var("FOLIO_REQUIRE_CHROMIUM").is_ok_and(|value| value == "1");
    assert!(!required, "chromium not found on the PATH (or at $FOLIO_CHROMIUM) and FOLIO_REQUIRE_CHROMIUM=1: install it with `apt-get install chromium`");
    println!("SKIPPED report_browser: chromium not found on the PATH or at $FOLIO_CHROMIUM; install it with `apt-get install chromium`");
    None
}

/// Runs `folio --store STORE ARGS...`, asserts success and returns stdout.
fn folio(store: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("the folio binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "folio {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs headless Chromium on `page` with `extra` arguments and a fresh profile, kills it after
/// [`CHROMIUM_TIMEOUT`], and returns its stdout.
fn run_chromium(chromium: &Path, page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output_dir = tempfile::tempdir().unwrap();
    let stdout_path = output_dir.path().join("stdout");
    let stderr_path = output_dir.path().join("stderr");
    let url = format!("file://{}", page.canonicalize().unwrap().display());

    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium timed out after {CHROMIUM_TIMEOUT:?} on {url} with {extra:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}) on {url} with {extra:?}; stderr:\n{stderr}");
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// Returns the DOM of `page` after its load event, as Chromium serialises it.
fn dump_dom(chromium: &Path, page: &Path) -> String {
    // Virtual time lets the page finish loading every image and run its load handler before
    // the DOM is printed, without waiting in real time.
    run_chromium(chromium, page, &["--virtual-time-budget=10000".to_string(), "--dump-dom".to_string()])
}

/// Returns the value of attribute `name` on the element with id `id`.
fn attribute(dom: &str, id: &str, name: &str) -> Option<String> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..start].rfind('<')?;
    let tag_end = start + dom[start..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let value_start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let value_end = value_start + tag[value_start..].find('"')?;
    Some(tag[value_start..value_end].to_string())
}

fn image_counts(dom: &str) -> (usize, usize) {
    let count = |name| {
        attribute(dom, "image-status", name)
            .unwrap_or_else(|| panic!("the report's image check did not set {name}; DOM:\n{dom}"))
            .parse::<usize>()
            .unwrap()
    };
    (count("data-loaded"), count("data-broken"))
}

#[test]
fn report_images_load_in_chromium() {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let store_dir = tempfile::tempdir().unwrap();
    let store = store_dir.path();
    let scans = scans_folder();

    let ingested = folio(store, &["ingest", "--quiet", scans.to_str().unwrap()]);
    assert!(ingested.contains("pages embedded"), "{ingested}");
    let printed = folio(store, &["clusters"]);
    let report = printed
        .lines()
        .find_map(|line| line.strip_prefix("report: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("`folio clusters` printed no report path:\n{printed}"));
    assert!(report.is_file(), "report {} missing", report.display());
    let html = std::fs::read_to_string(&report).unwrap();
    let image_count = html.matches("<img ").count();
    let cluster_count = html.matches("<h3 id=\"cluster-").count();
    assert!(cluster_count >= 2, "expected at least 2 clusters:\n{printed}");
    assert_eq!(image_count, cluster_count + 1, "one map and one contact sheet per cluster");

    // Every image loads.
    let dom = dump_dom(&chromium, &report);
    assert_eq!(image_counts(&dom), (image_count, 0), "loaded and broken images");
    assert!(!dom.contains("class=\"image-missing\""), "the report marks a missing image");

    // The screenshot is not blank and shows the map's first cluster colour, which only the
    // map image contains (the page itself is black, grey and white).
    let screenshot_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_browser");
    std::fs::create_dir_all(&screenshot_dir).unwrap();
    let screenshot = screenshot_dir.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        &chromium,
        &report,
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}"),
        ],
    );
    println!("screenshot: {}", screenshot.display());
    let bytes = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    let mut pages = folio_pages::open("report.png", bytes, &folio_pages::Limits::default())
        .expect("the screenshot is a readable PNG");
    let shot = pages.next().expect("the screenshot has one page").expect("the screenshot decodes").image.to_rgb8();
    assert_eq!((shot.width(), shot.height()), (WINDOW_WIDTH, WINDOW_HEIGHT));

    let pixel_count = (shot.width() * shot.height()) as usize;
    let non_white = shot.pixels().filter(|pixel| pixel.0 != [255, 255, 255]).count();
    assert!(non_white * 100 > pixel_count, "screenshot is nearly blank: {non_white} of {pixel_count} pixels not white");
    let map_colour = folio_clusters::cluster_colour(0).0;
    let near = |a: u8, b: u8| a.abs_diff(b) <= 3;
    let map_pixels = shot
        .pixels()
        .filter(|pixel| (0..3).all(|channel| near(pixel.0[channel], map_colour[channel])))
        .count();
    assert!(map_pixels >= 50, "screenshot shows only {map_pixels} pixels of cluster 0's colour {map_colour:?}: the map did not render");

    // A removed contact sheet is counted as broken and named on the page.
    let folder = report.parent().unwrap();
    std::fs::remove_file(folder.join("cluster-001.png")).unwrap();
    let dom = dump_dom(&chromium, &report);
    assert_eq!(image_counts(&dom), (image_count - 1, 1), "loaded and broken images after removing one");
    assert!(
        dom.contains("<p class=\"image-missing\">image missing: cluster-001.png</p>"),
        "no note names the removed image"
    );
}
