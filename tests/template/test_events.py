"""Check the sample events in infra/events against the template and the shapes AWS sends."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_plus

import pytest

import template_checks as checks
from template_checks import WORKSPACE

EVENTS = WORKSPACE / "infra" / "events"
HTTP_EVENTS = sorted(EVENTS.glob("http-*.json"))


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def route_regex(route_path: str) -> str:
    """Translate an API Gateway route path into a regular expression for request paths."""
    parts = []
    for segment in route_path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(".+")
        elif segment.startswith("{"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return "/" + "/".join(parts)


@pytest.fixture(scope="module")
def template() -> dict:
    return checks.load_template()


def test_s3_put_event_is_under_scans_prefix(template):
    record = load_event("s3-put.json")["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    scans_prefix = template["Parameters"]["ScansPrefix"]["Default"]
    assert unquote_plus(record["s3"]["object"]["key"]).startswith(scans_prefix)
    for field in ("versionId", "sequencer", "size", "eTag"):
        assert field in record["s3"]["object"], field


def test_s3_delete_event_key_is_url_encoded(template):
    record = load_event("s3-delete.json")["Records"][0]
    assert record["eventName"] == "ObjectRemoved:DeleteMarkerCreated"
    encoded = record["s3"]["object"]["key"]
    # S3 encodes keys like a form: ' ' -> '+', '+' -> '%2B', non-ASCII as UTF-8 %XX.
    assert " " not in encoded
    assert "%2B" in encoded
    assert unquote_plus(encoded) == "scans/2024 Q1/Invoice+Credit note – Müller & Söhne.tif"
    assert "size" not in record["s3"]["object"], "delete events carry no size"


def test_scheduled_event_matches_eventbridge_shape():
    event = load_event("scheduled.json")
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {}
    assert re.fullmatch(r"arn:aws:events:[a-z0-9-]+:\d{12}:rule/.+", event["resources"][0])


def test_http_events_cover_every_route(template):
    body = template["Resources"]["QueryApi"]["Properties"]["DefinitionBody"]
    routes = {f"{method.upper()} {path}" for path, methods in body["paths"].items() for method in methods}
    covered = {json.loads(path.read_text(encoding="utf-8"))["routeKey"] for path in HTTP_EVENTS}
    assert covered == routes


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=[path.stem for path in HTTP_EVENTS])
def test_http_event_is_payload_version_2(template, path):
    event = json.loads(path.read_text(encoding="utf-8"))
    assert event["version"] == "2.0"
    context = event["requestContext"]
    assert context["routeKey"] == event["routeKey"]
    method, route_path = event["routeKey"].split(" ", 1)
    assert context["http"]["method"] == method
    assert context["stage"] == "$default"
    assert "iam" in context["authorizer"], "the API uses IAM authorization by default"

    variables = re.findall(r"\{([^}]+?)\+?\}", route_path)
    assert sorted(event.get("pathParameters", {})) == sorted(variables)
    assert re.fullmatch(route_regex(route_path), event["rawPath"]), f"{event['rawPath']} does not match {route_path}"
