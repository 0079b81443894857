//! Test harness for Folio's end-to-end tests: a real S3-compatible server
//! on 127.0.0.1, S3 event records of the exact shape AWS sends, and the
//! paths of the sample scans and the shared corpus.
//!
//! The server is `moto_server` (PyPI package `moto[server]`), started on a
//! free port for each test binary, or the server named by
//! `FOLIO_TEST_S3_ENDPOINT` when set. Tests that need it skip with a
//! message when neither is available.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() {
//! let Some(server) = folio_e2e::S3Server::start() else { return };
//! let client = server.client().await;
//! folio_e2e::create_bucket(&client, "scans-bucket", true).await;
//! # }
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3-compatible server.
pub struct S3Server {
    child: Option<Child>,
    pub endpoint: String,
}

/// Environment variable naming an already running S3-compatible endpoint.
pub const ENV_ENDPOINT: &str = "FOLIO_TEST_S3_ENDPOINT";

impl S3Server {
    /// Starts `moto_server` on a free port of 127.0.0.1 (or uses
    /// `FOLIO_TEST_S3_ENDPOINT`), or prints why not and returns `None`.
    pub fn start() -> Option<S3Server> {
        if let Ok(endpoint) = std::env::var(ENV_ENDPOINT) {
            return Some(S3Server { child: None, endpoint });
        }
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                eprintln!("SKIP: cannot start moto_server ({error}); install it with `pip install 'moto[server]'` or set {ENV_ENDPOINT}");
                return None;
            }
        };
        let server = S3Server {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Builds an S3 client for this server, with test credentials and path-style addressing.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "folio-tests");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Creates a bucket, with versioning when asked (the deployed bucket is versioned).
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str, versioned: bool) {
    client.create_bucket().bucket(bucket).send().await.expect("create the test bucket");
    if versioned {
        let configuration = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
            .build();
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(configuration)
            .send()
            .await
            .expect("enable versioning");
    }
}

/// What an uploaded object's event record needs.
pub struct Upload {
    pub key: String,
    pub size: i64,
    pub etag: String,
    pub version_id: Option<String>,
}

/// Uploads an object and returns what S3 would put in its event record.
pub async fn upload(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> Upload {
    let size = body.len() as i64;
    let output = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("upload the test object");
    Upload {
        key: key.to_owned(),
        size,
        etag: output.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
        version_id: output.version_id().map(str::to_owned),
    }
}

/// Percent-encodes a key as S3 does in event records: space as `+`,
/// everything but unreserved characters and `/` as `%XX`.
pub fn encode_event_key(key: &str) -> String {
    let mut encoded = String::new();
    for byte in key.bytes() {
        match byte {
            b' ' => encoded.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => encoded.push(byte as char),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// One S3 event record in the JSON shape AWS sends to Lambda (event
/// version 2.1). `event_name` is for example `ObjectCreated:Put` or
/// `ObjectRemoved:Delete`; the key is encoded as S3 encodes it.
pub fn event_record(
    bucket: &str,
    event_name: &str,
    key: &str,
    size: i64,
    etag: &str,
    version_id: Option<&str>,
    sequencer: &str,
) -> serde_json::Value {
    let mut object = serde_json::json!({
        "key": encode_event_key(key),
        "sequencer": sequencer,
    });
    if event_name.starts_with("ObjectCreated") {
        object["size"] = serde_json::json!(size);
        object["eTag"] = serde_json::json!(etag);
    }
    if let Some(version) = version_id {
        object["versionId"] = serde_json::json!(version);
    }
    serde_json::json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-04T12:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "folio-ingest",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": object
        }
    })
}

/// Wraps records in an event: `{"Records": [...]}`.
pub fn event(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "Records": records })
}

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

/// Returns the folder of sample scans committed with the repository.
pub fn samples() -> PathBuf {
    workspace_root().join("samples")
}

/// Returns the shared corpus beside the repository, or `None` (with a message) when absent.
pub fn corpus() -> Option<PathBuf> {
    let path = workspace_root().join("../shared/corpus");
    if path.join("manifest.tsv").is_file() {
        Some(path)
    } else {
        eprintln!("SKIP: {} is absent; this test needs the shared corpus", path.display());
        None
    }
}

/// Deterministic pseudo-random unit vector of `dims` values (xorshift64), for synthetic shards.
pub fn unit_vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    normalised(values)
}

/// Returns a unit vector close to `base` (cosine about 0.99 in 32 dimensions): `base` plus
/// 0.15 times the unit vector of `seed`, normalised.
pub fn near(base: &[f32], seed: u64) -> Vec<f32> {
    let noise = unit_vector(seed, base.len());
    normalised(base.iter().zip(&noise).map(|(a, b)| a + 0.15 * b).collect())
}

fn normalised(values: Vec<f32>) -> Vec<f32> {
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    values.into_iter().map(|value| value / norm).collect()
}
