"""The Terraform plan of infra/, read as JSON: least privilege and hardening, checked.

The plan is made against a fresh moto server and an empty state (``terraform plan -out``,
then ``terraform show -json``), with nothing applied: every IAM policy is built from
resource names, so each one is known in full at plan time, as a reviewer reads it.
Links between resources (which queue a function's failures go to) are unknown until
apply, so they are read from the plan's configuration section, where each expression
names the resources it refers to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from localstack.eventbridge import transform
from producer.produce import parse_event
from tests.integration.test_infra_apply import (
    TERRAFORM,
    emulator_variables,
    make_stand_in_packages,
    terraform,
    terraform_init,
)

pytestmark = pytest.mark.integration

# X-Ray's write actions have no resource-level permissions: "*" is the only resource they
# take (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html),
# and the only wildcard resource any policy here may grant.
XRAY_WRITE_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
POLICY_ATTRIBUTES = ("policy", "assume_role_policy")
FUNCTIONS = ("producer", "consumer", "writer", "compactor")
#: The zip each function runs: the compactor is the writer's code with another handler.
PACKAGE_OF = {"compactor": "writer"}


def function_address(function: str) -> str:
    """The plan address of one function (all four come from one for_each resource)."""
    return f'aws_lambda_function.function["{function}"]'


@dataclass(frozen=True)
class Plan:
    """``terraform show -json`` of a plan, with lookups by resource type and address."""

    raw: dict[str, Any]
    package_dir: Path

    def planned(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Address -> planned values of every resource of ``resource_type``."""
        return {
            resource["address"]: resource["values"]
            for resource in self.raw["planned_values"]["root_module"].get("resources", [])
            if resource["type"] == resource_type and resource["mode"] == "managed"
        }

    def unknown(self, address: str) -> dict[str, Any]:
        """Which of a resource's attributes are known only after apply."""
        change = next(rc for rc in self.raw["resource_changes"] if rc["address"] == address)
        return dict(change["change"]["after_unknown"])

    def data(self, address: str) -> dict[str, Any]:
        """Values of a data source, read while planning."""
        return next(
            resource["values"]
            for resource in self.raw["prior_state"]["values"]["root_module"]["resources"]
            if resource["address"] == address
        )

    def expressions(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Address (without instance keys) -> configuration expressions, by resource type."""
        return {
            resource["address"]: resource["expressions"]
            for resource in self.raw["configuration"]["root_module"]["resources"]
            if resource["type"] == resource_type and resource["mode"] == "managed"
        }


def references(expression: Any, resource_type: str) -> set[str]:
    """Addresses of the ``resource_type`` resources an expression (at any depth) refers to."""
    found: set[str] = set()
    if isinstance(expression, dict):
        for key, value in expression.items():
            if key == "references":
                found |= {
                    ".".join(ref.split(".")[:2])
                    for ref in value
                    if ref.startswith(f"{resource_type}.")
                }
            else:
                found |= references(value, resource_type)
    elif isinstance(expression, list):
        for item in expression:
            found |= references(item, resource_type)
    return found


def make_plan(work: Path, *extra: str) -> Iterator[Plan]:
    """Plan ``infra/`` against a fresh moto server with ``extra`` variables."""
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH")
    package_dir = work / "packages"
    make_stand_in_packages(package_dir)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        terraform_init()
        plan_file = work / "plan.tfplan"
        terraform(
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            f"-state={work / 'terraform.tfstate'}",
            f"-out={plan_file}",
            *emulator_variables(f"http://{host}:{port}", package_dir),
            *extra,
        )
        shown = terraform("show", "-json", "-no-color", str(plan_file))
        yield Plan(json.loads(shown.stdout), package_dir)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plan]:
    yield from make_plan(tmp_path_factory.mktemp("infra-plan"))


def test_several_firehose_streams_are_all_granted_to_the_consumer(
    tmp_path: Path,
) -> None:
    # given the way past one stream's quota: three streams
    [wide] = list(make_plan(tmp_path, "-var=firehose_streams=3"))
    streams = [s["name"] for s in wide.planned("aws_kinesis_firehose_delivery_stream").values()]
    policy = json.loads(
        wide.planned("aws_iam_role_policy")["aws_iam_role_policy.consumer"]["policy"]
    )
    [deliver] = [s for s in policy["Statement"] if s.get("Sid") == "DeliverRecords"]
    outputs = wide.raw["planned_values"]["outputs"]
    # then the consumer may put into exactly those, and the stack names them all
    assert sorted(streams) == ["fanout-records", "fanout-records-1", "fanout-records-2"]
    assert sorted(r.rsplit("/", 1)[1] for r in _as_list(deliver["Resource"])) == sorted(streams)
    assert outputs["delivery_stream_names"]["value"] == streams


def test_producer_shards_tick_every_shard_at_once(tmp_path: Path) -> None:
    # given the way past one producer's 900 s: three shards
    [sharded] = list(make_plan(tmp_path, "-var=producer_shards=3"))
    rules = sharded.planned("aws_cloudwatch_event_rule")
    targets = sharded.planned("aws_cloudwatch_event_target")
    producer_rules = sorted(r["name"] for r in rules.values() if "schedule" in r["name"])
    # then a rule per shard, on the same schedule, each with the producer as its target
    assert producer_rules == [f"fanout-schedule-{i}" for i in range(3)]
    assert {r["schedule_expression"] for r in rules.values() if "schedule-" in r["name"]} == {
        "cron(5 * * * ? *)"
    }
    shards = []
    for i in range(3):
        target = targets[f'aws_cloudwatch_event_target.function["producer-{i}"]']
        [transformer] = target["input_transformer"]
        # and its tick, shaped as EventBridge shapes it, asks the producer for its shard
        tick = scheduled_event_for(f"fanout-schedule-{i}")
        request = parse_event(transform(transformer, tick), 3600)
        assert request.kind == "schedule"
        shards.append(request.shard)
    assert shards == [(0, 3), (1, 3), (2, 3)]
    # the compactor's tick is untouched
    assert not targets['aws_cloudwatch_event_target.function["compactor"]']["input_transformer"]


def scheduled_event_for(rule: str) -> dict[str, Any]:
    return {
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-27T09:05:00Z",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        "detail": {},
    }


# The wildcard check


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_arn(arn: str) -> bool:
    """Whether ``arn`` stands for more than resources of this stack.

    A trailing ``*`` under a named resource (``bucket/raw/*``, ``log-group:/aws/lambda/f:*``)
    is scoped; ``*`` itself, a wildcard partition, service, region or account, a wildcard
    right after the resource type (``log-group:*``) or a whole bucket's objects are not.
    """
    if arn == "*":
        return True
    parts = arn.split(":", 5)
    if len(parts) < 6 or any("*" in part for part in parts[:5]):
        return True
    service, resource = parts[2], parts[5]
    if service == "s3":
        bucket, _, key = resource.partition("/")
        return "*" in bucket or key.startswith("*")
    return re.match(r"([A-Za-z-]+[:/])?\*", resource) is not None


def wildcard_grants(document: dict[str, Any]) -> list[str]:
    """What an IAM policy document allows beyond named actions on named resources."""
    problems = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        if statement.get("Effect") != "Allow":
            continue  # a Deny may, and should, cover everything (e.g. every non-TLS request)
        where = statement.get("Sid") or f"statement {index}"
        for negated in ("NotAction", "NotResource", "NotPrincipal"):
            if negated in statement:
                problems.append(f"{where}: Allow with {negated}")
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        problems += [f"{where}: action {a}" for a in actions if "*" in a or "?" in a]
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*" and actions and set(actions) <= XRAY_WRITE_ACTIONS:
                continue
            if wildcard_arn(str(resource)):
                problems.append(f"{where}: resource {resource} for {actions}")
        principal = statement.get("Principal")
        principals = principal.values() if isinstance(principal, dict) else [principal]
        if any("*" in _as_list(p) for p in principals if p is not None):
            problems.append(f"{where}: principal *")
    return problems


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:1:q"}, "action sqs:*"),
        ({"Action": "s3:Get*", "Resource": "arn:aws:s3:::b/raw/*"}, "action s3:Get*"),
        ({"Action": "sqs:SendMessage", "Resource": "*"}, "resource *"),
        ({"Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:1:q"}, "resource arn:aws:sqs:*"),
        ({"Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:*"}, "resource"),
        ({"Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:r:1:log-group:*"}, "resource"),
        ({"Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}, "resource arn:aws:s3:::b/*"),
        ({"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"}, "resource arn:aws:s3:::*"),
        ({"NotAction": "iam:*", "Resource": "arn:aws:s3:::b/raw/*"}, "Allow with NotAction"),
        (
            {"Action": ["xray:PutTraceSegments", "s3:PutObject"], "Resource": "*"},
            "resource * for",
        ),
        (
            {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/raw/*", "Principal": "*"},
            "principal *",
        ),
    ],
    ids=[
        "service-wide-action",
        "action-prefix",
        "any-resource",
        "any-region",
        "every-queue",
        "every-log-group",
        "whole-bucket",
        "every-bucket",
        "not-action",
        "xray-star-shared-with-another-action",
        "public-principal",
    ],
)
def test_wildcard_check_catches(statement: dict[str, Any], expected: str) -> None:
    problems = wildcard_grants({"Statement": [{"Effect": "Allow", **statement}]})

    assert len(problems) == 1
    assert expected in problems[0]


def test_wildcard_check_passes_scoped_grants_and_the_xray_exception() -> None:
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": sorted(XRAY_WRITE_ACTIONS), "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/raw/*"},
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/fanout-writer:*",
            },
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Principal": "*"},
        ]
    }

    assert wildcard_grants(document) == []


# The plan


def policy_documents(plan: Plan) -> dict[str, dict[str, Any]]:
    """``<address>.<attribute>`` -> document, for every policy any planned resource holds."""
    documents = {}
    for resource in plan.raw["planned_values"]["root_module"].get("resources", []):
        for attribute in POLICY_ATTRIBUTES:
            text = resource["values"].get(attribute)
            if text:
                documents[f"{resource['address']}.{attribute}"] = json.loads(text)
    return documents


def test_plan_shows_every_policy_in_full(plan: Plan) -> None:
    unknown = [
        f"{address}.{attribute}"
        for resource_type in ("aws_iam_role_policy", "aws_iam_role")
        for address in plan.planned(resource_type)
        for attribute in POLICY_ATTRIBUTES
        if plan.unknown(address).get(attribute)
    ]

    assert unknown == [], "policies known only after apply cannot be reviewed in the plan"
    assert set(plan.planned("aws_iam_role_policy")) == {
        f"aws_iam_role_policy.{role}" for role in (*FUNCTIONS, "firehose")
    }


def test_no_policy_grants_a_wildcard_action_or_resource(plan: Plan) -> None:
    documents = policy_documents(plan)

    problems = {
        where: found
        for where, document in documents.items()
        if (found := wildcard_grants(document))
    }

    assert len(documents) >= 10  # five roles: a trust policy and a permissions policy each
    assert problems == {}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_traces_actively_and_may_write_traces(plan: Plan, function: str) -> None:
    values = plan.planned("aws_lambda_function")[function_address(function)]
    policy = json.loads(
        plan.planned("aws_iam_role_policy")[f"aws_iam_role_policy.{function}"]["policy"]
    )

    granted = {
        action
        for statement in policy["Statement"]
        for action in _as_list(statement["Action"])
        if statement["Resource"] == "*"
    }

    assert values["tracing_config"] == [{"mode": "Active"}]
    assert granted == XRAY_WRITE_ACTIONS


def test_every_function_has_a_dead_letter_path(plan: Plan) -> None:
    functions = {v["function_name"] for v in plan.planned("aws_lambda_function").values()}
    queues = plan.expressions("aws_sqs_queue")

    # Invoked asynchronously (EventBridge, S3): Lambda's retries, then an on-failure destination.
    invoked_async = {p["function_name"] for p in plan.planned("aws_lambda_permission").values()}
    [invoke_config] = plan.expressions("aws_lambda_function_event_invoke_config").values()
    with_destination = {
        config["function_name"]
        for config in plan.planned("aws_lambda_function_event_invoke_config").values()
        if config["destination_config"][0]["on_failure"]
    }
    # Fed by an SQS event source mapping: the queue's redrive policy.
    [mapping_config] = plan.expressions("aws_lambda_event_source_mapping").values()
    polled = {m["function_name"] for m in plan.planned("aws_lambda_event_source_mapping").values()}
    sources = references(mapping_config["event_source_arn"], "aws_sqs_queue")

    assert len(functions) == len(FUNCTIONS)
    assert functions == invoked_async | polled, "a function with no trigger"
    assert references(invoke_config["destination_config"], "aws_sqs_queue")
    assert invoked_async <= with_destination
    assert sources
    assert all(references(queues[q].get("redrive_policy"), "aws_sqs_queue") for q in sources)


def test_every_dead_letter_queue_has_a_depth_alarm(plan: Plan) -> None:
    queues = plan.expressions("aws_sqs_queue")
    redrive_targets = set().union(
        *(references(q.get("redrive_policy"), "aws_sqs_queue") for q in queues.values())
    )
    destinations = set().union(
        *(
            references(config.get("destination_config"), "aws_sqs_queue")
            for config in plan.expressions("aws_lambda_function_event_invoke_config").values()
        )
    )
    names = {address: values["name"] for address, values in plan.planned("aws_sqs_queue").items()}
    watched = {
        alarm["dimensions"]["QueueName"]
        for alarm in plan.planned("aws_cloudwatch_metric_alarm").values()
        if alarm.get("metric_name") == "ApproximateNumberOfMessagesVisible"
        and alarm["comparison_operator"] == "GreaterThanThreshold"
        and alarm["threshold"] == 0
    }

    assert redrive_targets and destinations
    assert {names[q] for q in redrive_targets | destinations} <= watched


def test_quarantine_rate_alarm_reads_what_the_log_metric_filters_publish(plan: Plan) -> None:
    published = {
        (
            f["metric_transformation"][0]["namespace"],
            f["metric_transformation"][0]["name"],
            source,
        )
        for address, f in plan.planned("aws_cloudwatch_log_metric_filter").items()
        for source in FUNCTIONS
        if f["log_group_name"].endswith(f"-{source}")
    }
    [alarm] = [
        a
        for a in plan.planned("aws_cloudwatch_metric_alarm").values()
        if a["alarm_name"].endswith("-quarantine-rate")
    ]

    read = {
        (
            q["metric"][0]["namespace"],
            q["metric"][0]["metric_name"],
            q["metric"][0]["dimensions"]["Function"],
        )
        for q in alarm["metric_query"]
        if q["metric"]
    }

    assert read == {
        ("fanout", "Fetched", "consumer"),
        ("fanout", "Quarantined", "consumer"),
        ("fanout", "Quarantined", "writer"),
    }
    assert read <= published


def test_bucket_is_private_and_encrypted(plan: Plan) -> None:
    buckets = plan.planned("aws_s3_bucket")
    blocks = plan.planned("aws_s3_bucket_public_access_block").values()
    encryption = plan.planned("aws_s3_bucket_server_side_encryption_configuration").values()

    assert len(buckets) == 1  # the function zips are uploaded directly, not through S3
    assert [
        {
            k: b[k]
            for k in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            )
        }
        for b in blocks
    ] == [
        dict.fromkeys(
            (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            ),
            True,
        )
    ]
    [rule] = next(iter(encryption))["rule"]
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] in {
        "AES256",
        "aws:kms",
    }


def test_bucket_policy_denies_every_request_without_tls(plan: Plan) -> None:
    # Rendered here whatever the target; attached on AWS and https endpoints (moto on plain
    # http could not be reached otherwise).
    document = json.loads(plan.data("data.aws_iam_policy_document.data_bucket")["json"])

    [statement] = document["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "s3:*"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [
        "arn:aws:s3:::fanout-123456789012-us-east-1",
        "arn:aws:s3:::fanout-123456789012-us-east-1/*",
    ]


def test_queues_and_the_delivery_stream_are_encrypted(plan: Plan) -> None:
    queues = plan.planned("aws_sqs_queue")
    [stream] = plan.planned("aws_kinesis_firehose_delivery_stream").values()

    assert len(queues) == 3
    assert all(q["sqs_managed_sse_enabled"] or q.get("kms_master_key_id") for q in queues.values())
    assert stream["server_side_encryption"][0]["enabled"] is True


def test_every_log_group_expires(plan: Plan) -> None:
    groups = plan.planned("aws_cloudwatch_log_group")

    assert len(groups) == 5  # four functions and Firehose
    assert all(group["retention_in_days"] > 0 for group in groups.values())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_code_is_the_built_zip_uploaded_directly(plan: Plan, function: str) -> None:
    values = plan.planned("aws_lambda_function")[function_address(function)]
    package = plan.package_dir / f"{PACKAGE_OF.get(function, function)}.zip"

    assert Path(values["filename"]).resolve() == package.resolve()
    assert (
        values["source_code_hash"]
        == base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()
    )
    assert values.get("s3_bucket") is None
    assert plan.planned("aws_s3_object") == {}
