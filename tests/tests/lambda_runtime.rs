//! The ingest and query binaries through the Lambda runtime interface:
//! `cargo lambda watch` emulates the Lambda control plane on 127.0.0.1,
//! each function binary polls it exactly as on AWS (`AWS_LAMBDA_RUNTIME_API`),
//! and `cargo lambda invoke` sends the events, against a moto S3 bucket.
//!
//! The emulator runs with `--only-lambda-apis` and this test starts the
//! binaries itself, built by `cargo build --workspace --all-targets`. Left to build them,
//! `cargo lambda watch` runs `cargo run --bin NAME`, which resolves features
//! for that one package (serde, num-traits, regex and others differ from the
//! workspace build) and so compiles tract and the AWS SDK a second time.
//!
//! Skips with a message when `cargo lambda` is not installed
//! (`pip install cargo-lambda`), unless `FOLIO_REQUIRE_CARGO_LAMBDA=1`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use folio_e2e::{S3Server, create_bucket, event, event_record, upload, workspace_root};

/// Set to 1 to fail, not skip, when `cargo lambda` is missing.
const ENV_REQUIRE: &str = "FOLIO_REQUIRE_CARGO_LAMBDA";
const BUCKET: &str = "folio-runtime";

/// Returns whether `cargo lambda` runs, or panics when it is required and does not.
fn cargo_lambda_available() -> bool {
    let output = Command::new("cargo").args(["lambda", "--version"]).output();
    let version = match &output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        _ => {
            let message = "`cargo lambda` is not installed; install it with `pip install cargo-lambda==1.9.2`";
            assert!(std::env::var(ENV_REQUIRE).as_deref() != Ok("1"), "{message} ({ENV_REQUIRE}=1)");
            eprintln!("SKIP: {message}");
            return false;
        }
    };
    eprintln!("using {version}");
    true
}

/// Target directory of this test binary (`<target>/debug/deps/lambda_runtime-HASH`).
fn target_dir() -> PathBuf {
    let executable = std::env::current_exe().expect("the test binary has a path");
    executable
        .ancestors()
        .nth(3)
        .expect("the test binary lies in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the function binaries with every target of the workspace. With
/// the tests included, features resolve as in `cargo test --workspace`
/// (dev-dependencies too), so the build reuses that one's dependency
/// artifacts: the tract, AWS SDK and parquet libraries had the same hashes.
/// `--bin ingest --bin query` alone resolved fewer features and rebuilt them.
fn build_functions(target: &Path) -> PathBuf {
    let started = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--workspace", "--all-targets"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build of the ingest and query binaries failed");
    eprintln!("function binaries up to date in {:.1} s", started.elapsed().as_secs_f64());
    target.join("debug")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, process_name: &str, child: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{process_name} exited with {status} before listening on port {port}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{process_name} did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process in its own process group, killed with the whole group on
/// drop, so a failing assertion leaves no emulator or function running.
struct Group {
    child: Child,
    name: &'static str,
}

impl Group {
    fn spawn(name: &'static str, command: &mut Command) -> Group {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Group { child, name }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        // `kill -- -PGID` signals every process of the group; the child is its leader.
        let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
        if !matches!(killed, Ok(status) if status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        eprintln!("stopped {} (process group {})", self.name, self.child.id());
    }
}

/// Starts one function binary polling the emulator's runtime API under `name`.
fn start_function(binary: &Path, name: &'static str, runtime_port: u16, s3_endpoint: &str, log: &Path) -> Group {
    let log = std::fs::File::create(log).expect("create the function log");
    Group::spawn(
        name,
        Command::new(binary)
            // The emulator routes /.rt/NAME/... to the function called NAME.
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{runtime_port}/.rt/{name}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
            .env("AWS_ENDPOINT_URL", s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("FOLIO_BUCKET", BUCKET)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
}

/// Sends one event with `cargo lambda invoke` and returns the function's JSON
/// response. Fails after 5 minutes, because a crashed function leaves the
/// request waiting in the emulator.
fn invoke(runtime_port: u16, function: &str, data_file: &Path, function_log: &Path) -> serde_json::Value {
    // Beside the function log in the scratch directory, never beside the event file.
    let stdout_path = function_log.with_extension("invoke.out");
    let stderr_path = function_log.with_extension("invoke.err");
    let mut child = Command::new("cargo")
        .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P"])
        .arg(runtime_port.to_string())
        .arg("--data-file")
        .arg(data_file)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cargo lambda invoke runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            print_log(function_log);
            panic!("cargo lambda invoke {function} timed out after 300 s; the function log is above");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    if !status.success() {
        print_log(function_log);
        panic!(
            "cargo lambda invoke {function} failed with {status}: {stdout}{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    }
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{function} returned no JSON ({error}): {stdout}"))
}

fn print_log(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        eprintln!("--- {}", path.display());
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    }
}

#[tokio::test]
async fn ingest_and_query_through_runtime_api() {
    if !cargo_lambda_available() {
        return;
    }
    let Some(server) = S3Server::start() else { return };
    let client = server.client().await;
    create_bucket(&client, BUCKET, true).await;
    let sample = std::fs::read(workspace_root().join("samples/fax-tiff/pillow/g4-multi.tiff")).unwrap();
    let key = "scans/runtime/g4 multi.tiff";
    let uploaded = upload(&client, BUCKET, key, sample).await;

    let target = target_dir();
    let binaries = build_functions(&target);
    let scratch = tempfile::tempdir().unwrap();

    let runtime_port = free_port();
    let watch_log = scratch.path().join("watch.log");
    let mut watch = Group::spawn(
        "cargo lambda watch",
        Command::new("cargo")
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P"])
            .arg(runtime_port.to_string())
            .current_dir(workspace_root())
            // cargo-lambda 1.9.2 ignores --target-dir, so the directory goes through the environment.
            .env("CARGO_TARGET_DIR", &target)
            .stdout(std::fs::File::create(&watch_log).unwrap())
            .stderr(Stdio::null()),
    );
    wait_for_port(runtime_port, "cargo lambda watch", &mut watch.child);

    let ingest_log = scratch.path().join("ingest.log");
    let query_log = scratch.path().join("query.log");
    let _ingest = start_function(&binaries.join("ingest"), "ingest", runtime_port, &server.endpoint, &ingest_log);
    let _query = start_function(&binaries.join("query"), "query", runtime_port, &server.endpoint, &query_log);

    let record = event_record(
        BUCKET,
        "ObjectCreated:Put",
        key,
        uploaded.size,
        &uploaded.etag,
        uploaded.version_id.as_deref(),
        "0062E5A1B2C3D4E5F6",
    );
    let s3_event = scratch.path().join("s3-put.json");
    std::fs::write(&s3_event, event(vec![record]).to_string()).unwrap();

    let reports = invoke(runtime_port, "ingest", &s3_event, &ingest_log);
    let report = &reports[0];
    if report["outcome"] != "embedded" {
        print_log(&ingest_log);
        print_log(&watch_log);
    }
    assert_eq!(report["outcome"], "embedded", "{reports}");
    assert_eq!(report["document"], "runtime/g4 multi.tiff", "the key is URL-decoded");
    assert_eq!(report["pages_embedded"], 3, "{reports}");
    assert_eq!(report["spilled"], false, "{reports}");
    let shard = report["shard"].as_str().expect("the report names the shard").to_owned();

    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("vectors/")
        .send()
        .await
        .expect("list the bucket");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|object| object.key()).collect();
    assert_eq!(keys, vec![shard.as_str()], "exactly the reported shard is in the bucket");

    // The same event again is a duplicate: the function stayed up between invocations.
    let again = invoke(runtime_port, "ingest", &s3_event, &ingest_log);
    assert_eq!(again[0]["outcome"], "duplicate", "{again}");

    let status_event = workspace_root().join("infra/events/http-status.json");
    let response = invoke(runtime_port, "query", &status_event, &query_log);
    if response["statusCode"] != 200 {
        print_log(&query_log);
    }
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response["body"].as_str().expect("the response has a text body")).expect("the body is JSON");
    assert_eq!(body["documents"], 1, "{body}");
    assert_eq!(body["pages"], 3, "{body}");
}
