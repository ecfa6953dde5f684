"""Integration fixtures: moto's server and the sample API, each in its own process on 127.0.0.1."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fanout_core import aws
from localstack.processes import moto_server, sample_api
from localstack.sample_api import ApiConfig
from localstack.stack import EMULATOR_CREDENTIALS

REGION = "us-east-1"
API = ApiConfig(seed=11, devices=12, values=200, page_size=5)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server; boto3 in this process (and the handlers) talk to it."""
    saved = {
        k: os.environ.get(k)
        for k in [*EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"]
    }
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        os.environ.update(EMULATOR_CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = server.url
        os.environ["AWS_DEFAULT_REGION"] = REGION
        aws.reset_clients()
        yield server.url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    aws.reset_clients()


@pytest.fixture(scope="session")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample API's base URL (12 devices, 200 values, pages of 5)."""
    with sample_api(API, tmp_path_factory.mktemp("api")) as server:
        yield server.url


@pytest.fixture
def client(emulator: str) -> Callable[[str], Any]:
    return lambda service: aws.client(service, REGION)


@dataclass
class Resources:
    bucket: str
    queue_url: str
    stream: str


@pytest.fixture
def resources(client: Callable[[str], Any]) -> Resources:
    """A fresh bucket, queue and Firehose stream (to the bucket's raw/ prefix)."""
    suffix = uuid.uuid4().hex[:8]
    bucket = f"fanout-test-{suffix}"
    client("s3").create_bucket(Bucket=bucket)
    queue_url = client("sqs").create_queue(QueueName=f"requests-{suffix}")["QueueUrl"]
    stream = f"records-{suffix}"
    client("firehose").create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "raw/",
        },
    )
    return Resources(bucket, queue_url, stream)


def list_keys(client: Callable[[str], Any], bucket: str, prefix: str) -> list[str]:
    response = client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def read(client: Callable[[str], Any], bucket: str, key: str) -> bytes:
    body: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


class Context:
    """A Lambda context with an honest countdown."""

    def __init__(self, seconds: float = 60.0) -> None:
        self._deadline = time.monotonic() + seconds
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


@pytest.fixture
def context() -> Callable[..., Context]:
    return Context


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "integration":
            item.add_marker(pytest.mark.integration)
