"""The Terraform configuration in infra/: formatted, valid, and applied to a moto server.

Terraform runs with ``-chdir=infra``, so the only files it writes in the repository are
``infra/.terraform/`` and ``infra/.terraform.lock.hcl``; state goes to a temporary folder.
``terraform init`` uses the provider mirror named by ``TF_PLUGIN_DIR`` when it is set (no
Terraform registry is reachable here) and the registry otherwise.

The functions' code is a set of small stand-in zips made by the test, so the test checks the
configuration and not the packaging (``make package``), and stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from localstack.terraform import plugin_dir

pytestmark = pytest.mark.integration

INFRA = Path(__file__).resolve().parents[2] / "infra"
TERRAFORM = shutil.which("terraform")
REGION = "us-east-1"
API_BASE_URL = "http://127.0.0.1:9/api"
FUNCTIONS = ("producer", "consumer", "writer")

requires_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")


def terraform(
    *args: str, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform -chdir=infra ARGS`` with AWS settings for moto and no prompts."""
    assert TERRAFORM is not None
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TF_VAR_")) and key != "TF_DATA_DIR"
    }
    environment.update(
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",  # no version check over the network
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    completed = subprocess.run(
        [TERRAFORM, f"-chdir={INFRA}", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and completed.returncode != 0:
        pytest.fail(
            f"terraform {' '.join(args)} exited {completed.returncode}\n"
            f"--- stdout\n{completed.stdout[-6000:]}\n--- stderr\n{completed.stderr[-6000:]}"
        )
    return completed


def terraform_init() -> None:
    mirror = plugin_dir()
    terraform("init", "-input=false", *([f"-plugin-dir={mirror}"] if mirror else []))


def make_stand_in_packages(folder: Path) -> dict[str, str]:
    """Write ``<function>.zip`` stand-ins; return each one's CodeSha256 (base64 SHA-256)."""
    folder.mkdir(parents=True, exist_ok=True)
    code_sha256 = {}
    for function in FUNCTIONS:
        package = folder / f"{function}.zip"
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr(f"{function}/__init__.py", "")
            archive.writestr(
                f"{function}/handler.py", "def lambda_handler(event, context):\n    return None\n"
            )
        code_sha256[function] = base64.b64encode(
            hashlib.sha256(package.read_bytes()).digest()
        ).decode()
    return code_sha256


#: What the local stack passes beside emulator.tfvars: its cores as the mapping's concurrency.
CONSUMER_MAX_CONCURRENCY = 3


def emulator_variables(endpoint: str, package_dir: Path) -> list[str]:
    return [
        "-var-file=emulator.tfvars",
        f"-var=aws_endpoint_url={endpoint}",
        f"-var=api_base_url={API_BASE_URL}",
        f"-var=package_dir={package_dir}",
        f"-var=consumer_max_concurrency={CONSUMER_MAX_CONCURRENCY}",
    ]


@dataclass(frozen=True)
class Deployment:
    """The configuration as applied to a running moto server."""

    endpoint: str
    state: Path
    package_dir: Path
    outputs: dict[str, Any]
    code_sha256: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def plan(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return terraform(
            "plan",
            "-input=false",
            "-no-color",
            "-refresh=false",
            "-lock=false",
            f"-state={self.state}",
            *emulator_variables(self.endpoint, self.package_dir),
            *extra,
            check=False,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH")
    work = tmp_path_factory.mktemp("infra-apply")
    package_dir = work / "packages"
    code_sha256 = make_stand_in_packages(package_dir)
    state = work / "terraform.tfstate"

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        terraform_init()
        # Three SQS queues cost about 25 s each in the provider's own wait, two of them in a row.
        terraform(
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            f"-state={state}",
            *emulator_variables(endpoint, package_dir),
            timeout=600,
        )
        outputs = json.loads(terraform("output", "-json", f"-state={state}").stdout)
        yield Deployment(
            endpoint=endpoint,
            state=state,
            package_dir=package_dir,
            outputs={name: output["value"] for name, output in outputs.items()},
            code_sha256=code_sha256,
        )
    finally:
        server.stop()


# Static checks


@requires_terraform
def test_terraform_files_are_formatted() -> None:
    completed = terraform("fmt", "-check", "-recursive", "-diff", check=False)

    assert completed.returncode == 0, f"run `terraform fmt -recursive infra`:\n{completed.stdout}"


@requires_terraform
def test_terraform_configuration_is_valid() -> None:
    terraform_init()

    completed = terraform("validate", "-no-color")

    assert "Success" in completed.stdout


# The configuration applied to moto


def emulator_tfvars() -> dict[str, int]:
    """The whole-number settings of infra/emulator.tfvars (``name = 123`` lines)."""
    pairs = re.findall(r"^(\w+)\s*=\s*(\d+)\s*$", (INFRA / "emulator.tfvars").read_text(), re.M)
    return {name: int(value) for name, value in pairs}


def test_consumer_mapping_is_configured_but_disabled_on_the_emulator(
    deployment: Deployment,
) -> None:
    # given the emulator settings (functions_run_on_target = false, batch 50, window 1 s)
    settings = emulator_tfvars()
    lam = deployment.client("lambda")

    # when
    mappings = lam.list_event_source_mappings(
        FunctionName=deployment.outputs["consumer_function_name"]
    )

    # then the local runner finds the configuration it must honour, and moto's trigger stays off
    [mapping] = mappings["EventSourceMappings"]
    assert mapping["EventSourceArn"] == deployment.outputs["requests_queue_arn"]
    assert mapping["BatchSize"] == settings["consumer_batch_size"] == 50
    assert mapping["MaximumBatchingWindowInSeconds"] == settings["consumer_batching_window_seconds"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": CONSUMER_MAX_CONCURRENCY}
    assert mapping["State"] == "Disabled"


@pytest.mark.parametrize(
    ("function", "expected_names"),
    [
        (
            "producer",
            {
                "FANOUT_QUEUE_URL",
                "FANOUT_API_BASE_URL",
                "FANOUT_WINDOW",
                "FANOUT_SEND_THREADS",
                "FANOUT_LOG_LEVEL",
                "FANOUT_METRICS_NAMESPACE",
            },
        ),
        (
            "consumer",
            {
                "FANOUT_API_BASE_URL",
                "FANOUT_DELIVERY_STREAM",
                "FANOUT_BUCKET",
                "FANOUT_QUARANTINE_PREFIX",
                "FANOUT_FETCH_CONCURRENCY",
                "FANOUT_CONNECT_TIMEOUT",
                "FANOUT_REQUEST_TIMEOUT",
                "FANOUT_MAX_BODY_BYTES",
                "FANOUT_LOG_LEVEL",
                "FANOUT_METRICS_NAMESPACE",
            },
        ),
        (
            "writer",
            {
                "FANOUT_BUCKET",
                "FANOUT_RAW_PREFIX",
                "FANOUT_PARQUET_PREFIX",
                "FANOUT_QUARANTINE_PREFIX",
                "FANOUT_CHUNK_BYTES",
                "FANOUT_COMPRESSION",
                "FANOUT_LOG_LEVEL",
                "FANOUT_METRICS_NAMESPACE",
            },
        ),
        (
            "compactor",
            {
                "FANOUT_BUCKET",
                "FANOUT_PARQUET_PREFIX",
                "FANOUT_COMPRESSION",
                "FANOUT_COMPACT_TARGET_BYTES",
                "FANOUT_LOG_LEVEL",
                "FANOUT_METRICS_NAMESPACE",
            },
        ),
    ],
    ids=["producer", "consumer", "writer", "compactor"],
)
def test_function_environment_names_exactly_the_settings_it_reads(
    deployment: Deployment, function: str, expected_names: set[str]
) -> None:
    config = deployment.client("lambda").get_function_configuration(
        FunctionName=deployment.outputs[f"{function}_function_name"]
    )

    assert set(config["Environment"]["Variables"]) == expected_names


def test_function_environment_points_at_the_deployed_resources(deployment: Deployment) -> None:
    lam, outputs = deployment.client("lambda"), deployment.outputs

    producer, consumer, writer = (
        lam.get_function_configuration(FunctionName=outputs[f"{f}_function_name"])["Environment"][
            "Variables"
        ]
        for f in FUNCTIONS
    )

    assert producer["FANOUT_QUEUE_URL"] == outputs["requests_queue_url"]
    assert producer["FANOUT_API_BASE_URL"] == API_BASE_URL
    assert producer["FANOUT_WINDOW"] == "1h"
    assert consumer["FANOUT_DELIVERY_STREAM"] == outputs["delivery_stream_name"]
    assert consumer["FANOUT_BUCKET"] == writer["FANOUT_BUCKET"] == outputs["bucket"]
    assert (
        consumer["FANOUT_QUARANTINE_PREFIX"] == writer["FANOUT_QUARANTINE_PREFIX"] == "quarantine/"
    )
    assert consumer["FANOUT_FETCH_CONCURRENCY"] == "32"
    assert consumer["FANOUT_MAX_BODY_BYTES"] == "8388608"
    assert writer["FANOUT_RAW_PREFIX"] == "raw/"
    assert writer["FANOUT_PARQUET_PREFIX"] == "parquet/"
    assert writer["FANOUT_COMPRESSION"] == "zstd"


@pytest.mark.parametrize(
    ("function", "package", "handler"),
    [
        *((f, f, f"{f}.handler.lambda_handler") for f in FUNCTIONS),
        ("compactor", "writer", "writer.handler.compact_handler"),
    ],
)
def test_function_runs_the_packaged_handler(
    deployment: Deployment, function: str, package: str, handler: str
) -> None:
    config = deployment.client("lambda").get_function_configuration(
        FunctionName=deployment.outputs[f"{function}_function_name"]
    )

    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == handler
    assert config["Architectures"] == ["x86_64"]
    assert config["TracingConfig"] == {"Mode": "Active"}
    # The local runner finds the code to run by this hash.
    assert config["CodeSha256"] == deployment.code_sha256[package]


@pytest.mark.parametrize("function", ["producer", "writer", "compactor"])
def test_asynchronously_invoked_function_is_retried_twice_then_sent_to_its_destination(
    deployment: Deployment, function: str
) -> None:
    invoke_config = deployment.client("lambda").get_function_event_invoke_config(
        FunctionName=deployment.outputs[f"{function}_function_name"]
    )
    failed_queue_arn = deployment.client("sqs").get_queue_attributes(
        QueueUrl=deployment.outputs["failed_invocations_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == failed_queue_arn


def test_raw_objects_notify_the_writer(deployment: Deployment) -> None:
    s3, lam = deployment.client("s3"), deployment.client("lambda")
    writer_arn = lam.get_function_configuration(
        FunctionName=deployment.outputs["writer_function_name"]
    )["FunctionArn"]

    notification = s3.get_bucket_notification_configuration(Bucket=deployment.outputs["bucket"])

    [target] = notification["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"] == writer_arn
    assert target["Events"] == ["s3:ObjectCreated:*"]
    assert target["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "raw/"}]


@pytest.mark.parametrize(
    ("rule_output", "function", "expression"),
    [
        ("schedule_rule_name", "producer", "cron(5 * * * ? *)"),
        ("compaction_rule_name", "compactor", "cron(20 * * * ? *)"),
    ],
)
def test_schedule_invokes_its_function(
    deployment: Deployment, rule_output: str, function: str, expression: str
) -> None:
    events, lam = deployment.client("events"), deployment.client("lambda")
    function_arn = lam.get_function_configuration(
        FunctionName=deployment.outputs[f"{function}_function_name"]
    )["FunctionArn"]

    [rule] = events.list_rules(NamePrefix=deployment.outputs[rule_output])["Rules"]
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]

    assert rule["ScheduleExpression"] == expression
    assert rule["State"] == "ENABLED"
    assert [target["Arn"] for target in targets] == [function_arn]


def test_requests_queue_redrives_to_the_dead_letter_queue(deployment: Deployment) -> None:
    sqs, outputs = deployment.client("sqs"), deployment.outputs
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["dead_letter_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs["requests_queue_url"], AttributeNames=["All"]
    )["Attributes"]

    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": 3,
    }
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["MessageRetentionPeriod"] == str(4 * 24 * 3600)
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_delivery_stream_writes_under_the_raw_prefix(deployment: Deployment) -> None:
    firehose = deployment.client("firehose")

    description = firehose.describe_delivery_stream(
        DeliveryStreamName=deployment.outputs["delivery_stream_name"]
    )["DeliveryStreamDescription"]

    [destination] = description["Destinations"]
    s3_destination = destination["ExtendedS3DestinationDescription"]
    assert s3_destination["BucketARN"] == f"arn:aws:s3:::{deployment.outputs['bucket']}"
    assert s3_destination["Prefix"] == "raw/"
    assert s3_destination["ErrorOutputPrefix"].startswith("raw-errors/")
    assert s3_destination["CompressionFormat"] == "UNCOMPRESSED"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            ["-var=queue_visibility_timeout_seconds=10"],
            "must be at least consumer_timeout_seconds",
        ),
        (["-var=consumer_max_concurrency=1"], "between 2 and 1000"),
        (["-var=parquet_prefix=raw/parquet/"], "the writer would invoke itself"),
        (
            ["-var=consumer_batching_window_seconds=0"],
            "at least 1 when consumer_batch_size is over 10",
        ),
    ],
    ids=["visibility-below-timeout", "concurrency-below-two", "writer-loop", "no-batching-window"],
)
def test_plan_rejects_settings_aws_would_refuse_or_regret(
    deployment: Deployment, variables: Sequence[str], message: str
) -> None:
    completed = deployment.plan(*variables)

    assert completed.returncode != 0
    assert message in " ".join(completed.stderr.replace("│", " ").split())
