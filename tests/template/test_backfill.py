"""Run infra/backfill.sh with the AWS CLI against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from template_checks import WORKSPACE

BACKFILL = WORKSPACE / "infra" / "backfill.sh"
BUCKET = "folio-123456789012-us-east-1"

# Keys as stored (not URL-encoded): spaces, '+', '&', unicode, and a nested folder.
SCAN_KEYS = [
    "scans/inbox/memo-1987-03.tif",
    "scans/2024 Q1/Invoice+Credit note – Müller & Söhne.tif",
    "scans/deep/a/b/c/fax 0001.pdf",
]
OTHER_KEY = "vectors/docs/abc/00001-deadbeef.parquet"


def tool_directory() -> str:
    """Directory of this interpreter's scripts, so a virtualenv's aws and moto_server are found first."""
    return str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (pip install -r infra/requirements.txt)")
    path = tool_directory() + os.pathsep + os.environ.get("PATH", "")
    for tool in ("aws", "jq", "moto_server"):
        if shutil.which(tool, path=path) is None:
            pytest.skip(f"{tool} is not on PATH; pip install -r infra/requirements.txt and apt-get install jq")

    port = free_port()
    server = subprocess.Popen(
        [shutil.which("moto_server", path=path), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # Wait for the server to accept connections: at most 30 s.
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"moto_server did not start on {endpoint}")
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        yield endpoint, client, path
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint):
    endpoint, client, _ = s3_endpoint
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for index, key in enumerate(SCAN_KEYS):
        client.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=f"scan {index}".encode(),
            ContentType="image/tiff",
            CacheControl="no-cache",
            Metadata={"source": f"scanner-{index}"},
        )
    client.put_object(Bucket=BUCKET, Key=OTHER_KEY, Body=b"shard")
    yield client
    versions = client.list_object_versions(Bucket=BUCKET)
    for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        client.delete_object(Bucket=BUCKET, Key=entry["Key"], VersionId=entry["VersionId"])
    client.delete_bucket(Bucket=BUCKET)


def run_backfill(s3_endpoint, *arguments: str) -> subprocess.CompletedProcess:
    endpoint, _, path = s3_endpoint
    environment = {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    return subprocess.run(
        ["bash", str(BACKFILL), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def versions_of(client, key: str) -> list[dict]:
    response = client.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [version for version in response.get("Versions", []) if version["Key"] == key]


def test_backfill_copies_each_scan_in_place(s3_endpoint, bucket):
    result = run_backfill(s3_endpoint, "--bucket", BUCKET, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SCAN_KEYS)} copied, 0 failed" in result.stdout

    for index, key in enumerate(SCAN_KEYS):
        assert len(versions_of(bucket, key)) == 2, f"{key}: expected a new version"
        head = bucket.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentType"] == "image/tiff", key
        assert head["CacheControl"] == "no-cache", key
        assert head["Metadata"]["source"] == f"scanner-{index}", key
        assert "folio-backfill" in head["Metadata"], key
        body = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == f"scan {index}".encode(), key


def test_backfill_leaves_other_prefixes_alone(s3_endpoint, bucket):
    result = run_backfill(s3_endpoint, "--bucket", BUCKET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(versions_of(bucket, OTHER_KEY)) == 1


def test_backfill_dry_run_copies_nothing(s3_endpoint, bucket):
    result = run_backfill(s3_endpoint, "--bucket", BUCKET, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    for key in SCAN_KEYS:
        assert f"would copy {key}" in result.stdout
        assert len(versions_of(bucket, key)) == 1, key


def test_backfill_fails_on_missing_bucket(s3_endpoint):
    result = run_backfill(s3_endpoint, "--bucket", "folio-no-such-bucket")
    assert result.returncode != 0
    assert "listing s3://folio-no-such-bucket/scans/ failed" in result.stderr


def test_backfill_rejects_empty_prefix(s3_endpoint):
    result = run_backfill(s3_endpoint, "--bucket", BUCKET, "--prefix", "")
    assert result.returncode == 2
    assert "empty --prefix" in result.stderr
