"""Tests of template.yaml against the workspace: crates, environment, IAM, API.

Run with `pytest tests/template` after `pip install -r infra/requirements.txt`
(infra/check-template.sh does both).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib

import pytest
from cfnlint.api import lint_file

import template_checks as checks
from template_checks import FUNCTIONS, TEMPLATE_PATH, WORKSPACE

FUNCTION_IDS = [contract.logical_id for contract in FUNCTIONS]

# The query routes in the API's OpenAPI body (method, path). GET
# /documents/{key+} also serves /documents/KEY/similar, as the comment above
# QueryApi in template.yaml explains.
QUERY_ROUTES = {
    ("post", "/search"),
    ("get", "/documents/{key+}"),
    ("get", "/clusters"),
    ("get", "/clusters/{id}"),
    ("get", "/status"),
}


@pytest.fixture(scope="module")
def template() -> dict:
    return checks.load_template()


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


# ---------------------------------------------------------------- cfn-lint


def lint_findings(path) -> tuple[list[str], list[str]]:
    """Return cfn-lint's errors and its other findings (rule ids E... are errors)."""
    matches = lint_file(path)
    errors = [str(match) for match in matches if match.rule.id.startswith("E")]
    others = [str(match) for match in matches if not match.rule.id.startswith("E")]
    return errors, others


def lint_transformed(template: dict, directory) -> tuple[list[str], list[str]]:
    path = directory / "transformed.json"
    path.write_text(json.dumps(checks.transform_sam(template), indent=1), encoding="utf-8")
    return lint_findings(path)


@pytest.fixture
def region(monkeypatch):
    pytest.importorskip("samtranslator", reason="aws-sam-translator is not installed (pip install -r infra/requirements.txt)")
    # The translator puts the region into generated ARNs; no AWS call is made.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_cfn_lint_reports_no_findings():
    errors, others = lint_findings(TEMPLATE_PATH)
    assert not errors, "cfn-lint errors:\n" + "\n".join(errors)
    assert not others, "cfn-lint warnings:\n" + "\n".join(others)


def test_cfn_lint_rejects_broken_copy(tmp_path):
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    broken_text = text.replace("LogGroup: !Ref IngestLogGroup", "LogGroup: !Ref IngestLogGroupMissing", 1)
    assert broken_text != text, "the edit target 'LogGroup: !Ref IngestLogGroup' is no longer in template.yaml"
    broken = tmp_path / "template.yaml"
    broken.write_text(broken_text, encoding="utf-8")
    errors, _ = lint_findings(broken)
    assert errors


def test_cfn_lint_passes_transformed_template(template, tmp_path, region):
    errors, others = lint_transformed(template, tmp_path)
    assert not errors, "cfn-lint errors in the SAM-expanded template:\n" + "\n".join(errors)
    assert not others, "cfn-lint warnings in the SAM-expanded template:\n" + "\n".join(others)


def test_cfn_lint_rejects_transformed_broken_copy(template, tmp_path, region):
    # A !Ref to a missing parameter inside Environment passes the plain lint
    # (cfn-lint 1.58) and must fail on the expanded template.
    broken = copy.deepcopy(template)
    broken["Resources"]["IndexerFunction"]["Properties"]["Environment"]["Variables"]["FOLIO_INDEX_QUANTIZATION"] = {"Ref": "IndexQuantisation"}
    errors, _ = lint_transformed(broken, tmp_path)
    assert any("IndexQuantisation" in error for error in errors), errors


# ------------------------------------------------------------------ crates


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_function_crate_layout(template, contract):
    function = template["Resources"][contract.logical_id]
    code_uri = function["Properties"]["CodeUri"]
    assert code_uri == contract.crate_dir, f"{contract.logical_id}: CodeUri is {code_uri!r}, expected {contract.crate_dir!r}"

    crate = WORKSPACE / code_uri
    manifest_path = crate / "Cargo.toml"
    if not manifest_path.is_file() and contract.crate_dir not in checks.workspace_members():
        pytest.skip(f"{manifest_path} does not exist yet and the crate is not a workspace member: the function code has not landed")
    assert manifest_path.is_file(), f"{contract.crate_dir} is a workspace member but {manifest_path} is missing"
    assert contract.crate_dir in checks.workspace_members(), (
        f"{contract.crate_dir} is not in [workspace] members of Cargo.toml; cargo-lambda cannot build it there"
    )

    manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    package = manifest.get("package", {}).get("name")
    assert package == contract.package, f"{manifest_path}: package name is {package!r}, expected {contract.package!r}"
    assert (crate / "src" / "main.rs").is_file(), f"{crate}/src/main.rs is missing; cargo-lambda builds the package's binary from it"


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_function_build_settings(template, contract):
    function = template["Resources"][contract.logical_id]
    assert function.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda"
    binary = function.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
    assert binary in (None, contract.package), f"{contract.logical_id}: BuildProperties.Binary is {binary!r}"

    globals_ = template["Globals"]["Function"]
    properties = {**globals_, **function["Properties"]}
    assert properties["Runtime"] == "provided.al2023"
    assert properties["Handler"] == "bootstrap"
    assert properties["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert set(template["Parameters"]["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}


def test_function_sizes_stay_within_limits(template):
    expected = {
        "IngestFunction": (3008, 900),
        "IndexerFunction": (10240, 900),
        "QueryFunction": (2048, 29),
    }
    for logical_id, (memory, timeout) in expected.items():
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["MemorySize"] == memory, logical_id
        assert properties["Timeout"] == timeout, logical_id
    # API Gateway stops waiting for an HTTP API integration after 30 s.
    assert template["Resources"]["QueryFunction"]["Properties"]["Timeout"] < 30


# ------------------------------------------------------------- environment


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_environment_covers_agreed_variables(template, contract):
    names = set(checks.function_environment(template, contract))
    missing = contract.minimum_environment - names
    assert not missing, f"{contract.logical_id}: environment lacks {sorted(missing)}"

    access = checks.load_access(contract)
    for verb, variables in access.items():
        for variable in variables:
            assert variable in names, f"{contract.crate_dir}/access.json {verb} uses {variable}, which {contract.logical_id} does not receive"


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_environment_matches_code(template, contract):
    source_dir = WORKSPACE / contract.crate_dir / "src"
    if not source_dir.is_dir():
        pytest.skip(f"{source_dir} does not exist yet: cannot read which variables the code uses")
    found = checks.env_names_in_code(WORKSPACE / contract.crate_dir)
    if not found:
        pytest.skip(f"{contract.crate_dir} and its path dependencies read no FOLIO_ variable yet (code still a stub?)")
    template_names = {name for name in checks.function_environment(template, contract) if name.startswith("FOLIO_")}
    # RUST_LOG is read by tracing-subscriber's EnvFilter, not by a FOLIO_ literal.
    expected = set(found) | {"RUST_LOG"}
    problems = checks.check_environment(template, contract, expected, f"the code of {contract.crate_dir}")
    details = [f"  {name}: {', '.join(found.get(name, ['not read']))}" for name in sorted(template_names ^ set(found))]
    assert not problems, "\n".join(problems + ["where the code reads each name:"] + details)


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_environment_sets_rust_log(template, contract):
    variables = checks.function_environment(template, contract)
    assert variables.get("RUST_LOG") == {"Ref": "RustLog"}


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_environment_prefixes_come_from_parameters(template, contract):
    for name, value in checks.function_environment(template, contract).items():
        if name.endswith("_PREFIX"):
            assert isinstance(value, dict) and set(value) == {"Ref"}, f"{contract.logical_id}: {name} is {value!r}, expected !Ref to a prefix parameter"
            parameter = template["Parameters"][value["Ref"]]
            assert parameter["Default"].endswith("/"), f"{value['Ref']} default {parameter['Default']!r} must end in /"


# --------------------------------------------------------------------- IAM


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_access_json_names_known_verbs_and_variables(contract):
    access = checks.load_access(contract)
    assert set(access) <= checks.ACCESS_VERBS, f"{contract.crate_dir}/access.json: unknown verbs {sorted(set(access) - checks.ACCESS_VERBS)}"
    for verb, variables in access.items():
        assert isinstance(variables, list), f"{contract.crate_dir}/access.json: {verb} must be a list"
        for variable in variables:
            assert re.fullmatch(r"FOLIO_[A-Z]+_PREFIX", variable), f"{contract.crate_dir}/access.json: {variable!r} is not a FOLIO_*_PREFIX name"


@pytest.mark.parametrize("contract", FUNCTIONS, ids=FUNCTION_IDS)
def test_iam_matches_access_json(template, contract):
    problems = checks.check_function_iam(template, contract, checks.load_access(contract))
    assert not problems, "\n".join(problems)


def test_query_role_is_read_only(template):
    contract = next(contract for contract in FUNCTIONS if contract.logical_id == "QueryFunction")
    grants, _ = checks.s3_grants(template, contract)
    actions = {action for action, _ in grants}
    assert actions <= {"s3:GetObject", "s3:ListBucket"}, f"QueryRole grants {sorted(actions)}"


def test_no_wildcard_actions_anywhere(template):
    for name, resource in resources_of_type(template, "AWS::IAM::Role").items():
        for policy_name, _, statement in checks.role_statements(template, name):
            for action in checks.as_list(statement.get("Action", [])):
                assert "*" not in action, f"{name}/{policy_name}: wildcard action {action!r}"


def test_every_function_has_its_own_role(template):
    roles = [template["Resources"][contract.logical_id]["Properties"]["Role"] for contract in FUNCTIONS]
    assert len({json.dumps(role) for role in roles}) == len(FUNCTIONS)
    assert set(resources_of_type(template, "AWS::IAM::Role")) == {contract.role_id for contract in FUNCTIONS}


# Each case edits a copy of the template in one way that must fail the IAM check.
def tamper_add_s3_wildcard(template):
    statement = template["Resources"]["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][1]
    statement["Action"].append("s3:*")


def tamper_extra_prefix(template):
    statement = template["Resources"]["QueryRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Resource"].append({"Fn::Sub": checks.BUCKET_ARN_SUB + "/${ScansPrefix}*"})


def tamper_missing_prefix(template):
    statement = template["Resources"]["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][1]
    statement["Resource"].pop()


def tamper_list_without_condition(template):
    statement = template["Resources"]["IndexerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][-1]
    del statement["Condition"]


def tamper_whole_bucket_objects(template):
    statement = template["Resources"]["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Resource"] = [{"Fn::Sub": checks.BUCKET_ARN_SUB + "/*"}]


def tamper_extra_action(template):
    statement = template["Resources"]["QueryRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Action"].append("s3:PutObject")


def tamper_managed_policy(template):
    template["Resources"]["QueryRole"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]


def tamper_other_service(template):
    policies = template["Resources"]["IndexerRole"]["Properties"]["Policies"]
    policies.append(
        {
            "PolicyName": "extra",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}],
            },
        }
    )


def tamper_logs_on_every_group(template):
    policies = template["Resources"]["IngestRole"]["Properties"]["Policies"]
    policies[1]["PolicyDocument"]["Statement"][0]["Resource"] = "*"


def tamper_function_policies(template):
    template["Resources"]["IngestFunction"]["Properties"]["Policies"] = ["AWSLambdaBasicExecutionRole"]


TAMPERS = [
    tamper_add_s3_wildcard,
    tamper_extra_prefix,
    tamper_missing_prefix,
    tamper_list_without_condition,
    tamper_whole_bucket_objects,
    tamper_extra_action,
    tamper_managed_policy,
    tamper_other_service,
    tamper_logs_on_every_group,
    tamper_function_policies,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[tamper.__name__.removeprefix("tamper_") for tamper in TAMPERS])
def test_iam_check_rejects_tampered_copy(template, tamper):
    tampered = copy.deepcopy(template)
    tamper(tampered)
    problems = []
    for contract in FUNCTIONS:
        problems += checks.check_function_iam(tampered, contract, checks.load_access(contract))
    assert problems, f"the IAM check accepted a template changed by {tamper.__name__}"


def test_iam_check_rejects_tampered_file(tmp_path):
    # The same check through the YAML decoder: s3:* added to the ingest role's text.
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    tampered_text = text.replace("Action: [s3:PutObject]", "Action: [s3:PutObject, s3:*]", 1)
    assert tampered_text != text, "the tamper target 'Action: [s3:PutObject]' is no longer in template.yaml"
    tampered_path = tmp_path / "template.yaml"
    tampered_path.write_text(tampered_text, encoding="utf-8")

    tampered = checks.load_template(tampered_path)
    contract = FUNCTIONS[0]
    problems = checks.check_function_iam(tampered, contract, checks.load_access(contract))
    assert any("s3:*" in problem for problem in problems), problems


def test_environment_check_rejects_extra_variable(template):
    tampered = copy.deepcopy(template)
    contract = FUNCTIONS[0]
    checks.function_environment(tampered, contract)["FOLIO_BUCKET"] = {"Ref": "FolioBucket"}
    expected = set(checks.function_environment(template, contract))
    problems = checks.check_environment(tampered, contract, expected, "the contract")
    assert problems == [f"{contract.logical_id}: sets FOLIO_BUCKET, which the contract does not read; remove it from template.yaml"]


# ------------------------------------------------------------------ bucket


def test_bucket_is_private_encrypted_and_versioned(template):
    bucket = template["Resources"]["FolioBucket"]["Properties"]
    assert bucket["BucketName"] == {"Fn::Sub": checks.BUCKET_NAME_SUB}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == {"Fn::If": ["UseKms", "aws:kms", "AES256"]}


def test_bucket_policy_denies_insecure_transport(template):
    policy = template["Resources"]["FolioBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "FolioBucket"}
    statements = policy["PolicyDocument"]["Statement"]
    deny = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert len(deny) == 1
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny[0]["Principal"] == "*"
    assert {"Fn::Sub": "${FolioBucket.Arn}/*"} in deny[0]["Resource"]


def test_ingest_trigger_filters_scans_prefix(template):
    events = template["Resources"]["IngestFunction"]["Properties"]["Events"]
    s3_events = [event for event in events.values() if event["Type"] == "S3"]
    assert len(s3_events) == 1
    properties = s3_events[0]["Properties"]
    assert properties["Bucket"] == {"Ref": "FolioBucket"}
    assert set(properties["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert properties["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "ScansPrefix"}}]


def test_ingest_failures_go_to_encrypted_queue(template):
    config = template["Resources"]["IngestFunction"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}}
    queue = template["Resources"]["IngestFailureQueue"]["Properties"]
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


def test_indexer_runs_on_schedule_parameter(template):
    events = template["Resources"]["IndexerFunction"]["Properties"]["Events"]
    schedules = [event for event in events.values() if event["Type"] == "Schedule"]
    assert [event["Properties"]["Schedule"] for event in schedules] == [{"Ref": "IndexerSchedule"}]
    assert template["Parameters"]["IndexerSchedule"]["Default"] == "rate(1 hour)"


def test_log_groups_have_retention(template):
    for contract in FUNCTIONS:
        properties = template["Resources"][contract.logical_id]["Properties"]
        assert properties["LoggingConfig"]["LogGroup"] == {"Ref": contract.log_group_id}
        group = template["Resources"][contract.log_group_id]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_alarms_cover_failures(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    watched = {(alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"], json.dumps(alarm["Properties"]["Dimensions"][0]["Value"])) for alarm in alarms}
    assert ("AWS/Lambda", "Errors", json.dumps({"Ref": "IngestFunction"})) in watched
    assert ("AWS/Lambda", "Errors", json.dumps({"Ref": "IndexerFunction"})) in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", json.dumps({"Fn::GetAtt": ["IngestFailureQueue", "QueueName"]})) in watched
    assert ("AWS/ApiGateway", "5xx", json.dumps({"Ref": "QueryApi"})) in watched


def test_outputs_name_api_bucket_and_queue(template):
    outputs = template["Outputs"]
    assert "execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["BucketName"]["Value"] == {"Ref": "FolioBucket"}
    assert outputs["IngestFailureQueueUrl"]["Value"] == {"Ref": "IngestFailureQueue"}


# --------------------------------------------------------------------- API


def api_operations(template: dict) -> dict[tuple[str, str], dict]:
    body = template["Resources"]["QueryApi"]["Properties"]["DefinitionBody"]
    return {(method, path): operation for path, methods in body["paths"].items() for method, operation in methods.items()}


def test_api_serves_query_routes(template):
    assert set(api_operations(template)) == QUERY_ROUTES


def test_api_routes_invoke_query_function(template):
    for route, operation in api_operations(template).items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", route
        assert integration["payloadFormatVersion"] == "2.0", route
        assert "${QueryFunction.Arn}" in integration["uri"]["Fn::Sub"], route


def test_api_routes_require_iam_unless_jwt(template):
    for route, operation in api_operations(template).items():
        assert operation["security"] == {"Fn::If": ["UseJwt", [{"FolioJwt": []}], [{"AWS_IAM": []}]]}, route
    assert template["Parameters"]["ApiAuthorization"]["Default"] == "IAM"
    schemes = template["Resources"]["QueryApi"]["Properties"]["DefinitionBody"]["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    jwt = schemes["FolioJwt"]["Fn::If"]
    assert jwt[0] == "UseJwt"
    assert jwt[1]["x-amazon-apigateway-authorizer"]["jwtConfiguration"] == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    assert jwt[2] == {"Ref": "AWS::NoValue"}


def test_api_cors_off_by_default(template):
    assert template["Parameters"]["CorsAllowOrigins"]["Default"] == ""
    cors = template["Resources"]["QueryApi"]["Properties"]["CorsConfiguration"]
    assert cors["Fn::If"][0] == "CorsEnabled"
    assert cors["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_api_has_default_throttling(template):
    settings = template["Resources"]["QueryApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {"ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"}, "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"}}


def test_api_permission_scoped_to_query_api(template):
    permission = template["Resources"]["QueryApiInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "QueryFunction"}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "${QueryApi}/" in permission["SourceArn"]["Fn::Sub"]


# ----------------------------------------------------------- SAM transform


def test_sam_transform_adds_no_roles_or_policies(template, region):
    output = checks.transform_sam(template)

    roles = resources_of_type(output, "AWS::IAM::Role")
    assert set(roles) == {contract.role_id for contract in FUNCTIONS}, f"the SAM transform generated roles {sorted(roles)}"
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name} got managed policies from the transform"
    assert not resources_of_type(output, "AWS::IAM::Policy"), "the SAM transform attached extra policies"

    notification = output["Resources"]["FolioBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert {entry["Event"] for entry in notification} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for entry in notification:
        assert entry["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "ScansPrefix"}}]

    stages = resources_of_type(output, "AWS::ApiGatewayV2::Stage")
    assert len(stages) == 1
