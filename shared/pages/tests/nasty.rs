//! Runs every file of the shared "nasty" set (fuzzer crashes, bombs, loops, truncated
//! and odd files) in a child process under a memory and time limit. An abort, an
//! out-of-memory kill or a hang is then reported instead of taking the test runner down.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use folio_pages::{Options, PageErrorKind};

/// Set in the child process to the file it must decode.
const CHILD_FILE_VAR: &str = "FOLIO_PAGES_NASTY_FILE";
/// Address space for one child: the largest page the default limits allow (100 Mpx
/// RGB, 300 MB) plus decoder buffers and the test binary itself.
const CHILD_MEMORY_KIB: u64 = 3 * 1024 * 1024;
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Child side: decodes the file named by `FOLIO_PAGES_NASTY_FILE` and prints one line
/// per page. Does nothing in a normal test run.
#[test]
fn nasty_child_decode() {
    let Ok(path) = std::env::var(CHILD_FILE_VAR) else { return };
    match common::decode_file(Path::new(&path), &Options::default()) {
        Err(error) => println!("RESULT open-error {}", describe(&error.kind, &error.to_string())),
        Ok(pages) => {
            for page in pages {
                match page {
                    Ok(page) => println!("RESULT page {} {}x{} {:?}", page.number, page.image.width(), page.image.height(), page.image.color()),
                    Err(error) => println!("RESULT page-error {}", describe(&error.kind, &error.to_string())),
                }
            }
        }
    }
    println!("RESULT done");
}

fn describe(kind: &PageErrorKind, message: &str) -> String {
    let tag = match kind {
        PageErrorKind::Panicked { .. } => "PANICKED",
        PageErrorKind::TimedOut { .. } => "TIMEDOUT",
        _ => "error",
    };
    format!("{tag} {message}")
}

#[test]
fn nasty_files_fail_cleanly() {
    let Some(nasty) = common::shared_dir("nasty") else { return };
    let manifest = std::fs::read_to_string(nasty.join("manifest.tsv")).expect("nasty manifest.tsv");
    let exe = std::env::current_exe().expect("test binary path");
    let mut failures = Vec::new();

    println!("{:<72} {:>6} {:>7}  outcome", "file", "pages", "seconds");
    for line in manifest.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let relative = line.split('\t').next().expect("path column");
        let path = nasty.join(relative);
        let started = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v {CHILD_MEMORY_KIB}; exec \"$0\" \"$@\""))
            .arg(&exe)
            .args(["--exact", "nasty_child_decode", "--nocapture", "--test-threads=1"])
            .env(CHILD_FILE_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child test process");

        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for child") {
                break Some(status);
            }
            if started.elapsed() > CHILD_TIMEOUT {
                child.kill().expect("kill timed-out child");
                child.wait().expect("reap child");
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let seconds = started.elapsed().as_secs_f64();
        let output = child.wait_with_output().expect("child output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        // libtest may print its own "test ... " prefix on the first output line.
        let results: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.find("RESULT ").map(|at| &line[at + "RESULT ".len()..]))
            .collect();
        let pages = results.iter().filter(|r| r.starts_with("page ")).count();
        let errors: Vec<&str> = results
            .iter()
            .filter(|r| r.starts_with("page-error") || r.starts_with("open-error"))
            .copied()
            .collect();

        let outcome = match status {
            None => format!("HUNG: killed after {CHILD_TIMEOUT:?}"),
            Some(status) if !status.success() || !results.contains(&"done") => {
                format!("CRASHED: child exited with {status} (abort or out of memory under ulimit -v {CHILD_MEMORY_KIB} KiB)")
            }
            Some(_) if errors.iter().any(|e| e.contains("PANICKED") || e.contains("TIMEDOUT")) => {
                format!("BAD: {}", errors.join(" | "))
            }
            Some(_) if errors.is_empty() => "ok".to_owned(),
            Some(_) => errors.join(" | "),
        };
        println!("{relative:<72} {pages:>6} {seconds:>7.2}  {outcome}");
        if outcome.starts_with("HUNG") || outcome.starts_with("CRASHED") || outcome.starts_with("BAD") {
            failures.push(relative.to_owned());
        }
    }
    assert!(failures.is_empty(), "files that panicked, hung, timed out or crashed: {failures:?}");
}
