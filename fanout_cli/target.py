"""Which stack the ``fanout`` command talks to, and how it finds the stack's resources.

The standard AWS configuration says where (profile, region, credentials; an emulator
through ``AWS_ENDPOINT_URL``). The stack's name prefix (``--stack``, ``FANOUT_STACK``,
default ``fanout``) finds its resources by the names ``infra/`` gives them:

* the request queue ``<stack>-requests``, its dead-letter queue from the queue's redrive
  policy, and ``<stack>-failed-invocations``;
* the bucket and the prefixes from the functions' own configuration (``FANOUT_BUCKET``...
  of ``<stack>-consumer`` and ``<stack>-writer``), else ``<stack>-<account>-<region>``,
  the bucket's default name, and the default prefixes;
* the API's base URL from ``<stack>-producer``'s configuration.

Any of them can be named instead, by flag or by the variable the functions use
(``FANOUT_QUEUE_URL``, ``FANOUT_DEAD_LETTER_QUEUE_URL``, ``FANOUT_BUCKET``,
``FANOUT_PARQUET_PREFIX``, ``FANOUT_QUARANTINE_PREFIX``, ``FANOUT_API_BASE_URL``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

STACK_VARIABLE = "FANOUT_STACK"
DEFAULT_STACK = "fanout"
QUEUE_MISSING = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class CliError(Exception):
    """A problem the operator can fix; its message says how. Printed without a traceback."""


class PartlyDoneError(CliError):
    """The command ran but could not finish its work; the message says what is left."""


@dataclass(frozen=True)
class Target:
    """What the command line and the environment say about the stack."""

    stack: str = DEFAULT_STACK
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    bucket: str | None = None
    parquet_prefix: str | None = None
    quarantine_prefix: str | None = None
    api_base_url: str | None = None
    connections: int = 10

    @classmethod
    def from_sources(
        cls, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Target:
        """Flags first, then ``FANOUT_*`` variables; what neither names is discovered."""
        env = os.environ if environ is None else environ

        def pick(flag: str, variable: str) -> str | None:
            value = flags.get(flag) or env.get(variable, "").strip()
            return str(value) if value else None

        return cls(
            stack=pick("stack", STACK_VARIABLE) or DEFAULT_STACK,
            region=flags.get("region"),
            profile=flags.get("profile"),
            endpoint_url=flags.get("endpoint_url"),
            queue_url=pick("queue_url", "FANOUT_QUEUE_URL"),
            dead_letter_queue_url=pick("dead_letter_queue_url", "FANOUT_DEAD_LETTER_QUEUE_URL"),
            bucket=pick("bucket", "FANOUT_BUCKET"),
            parquet_prefix=pick("parquet_prefix", "FANOUT_PARQUET_PREFIX"),
            quarantine_prefix=pick("quarantine_prefix", "FANOUT_QUARANTINE_PREFIX"),
            api_base_url=pick("api_base_url", "FANOUT_API_BASE_URL"),
            connections=int(flags.get("connections") or 10),
        )


def _prefix(value: str) -> str:
    return value if value.endswith("/") else value + "/"


class Stack:
    """The deployed stack, reached through boto3; each resource is looked up once."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # boto3 reads AWS_DEFAULT_REGION; Lambda and many shells set AWS_REGION.
        self._session = boto3.session.Session(
            profile_name=target.profile,
            region_name=target.region or os.environ.get("AWS_REGION") or None,
        )
        self._clients: dict[str, Any] = {}
        self._environments: dict[str, dict[str, str]] = {}

    @property
    def region(self) -> str:
        if not self._session.region_name:
            raise CliError(
                "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, give the profile one, "
                "or pass --region"
            )
        return str(self._session.region_name)

    @property
    def endpoint(self) -> str:
        """Where requests go: the emulator's URL, or ``AWS``."""
        return self.target.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"

    def describe(self) -> str:
        return f"stack {self.target.stack!r} at {self.endpoint} ({self.region})"

    def client(self, service: str) -> Any:
        """A boto3 client with a connection per thread that shares it."""
        if service not in self._clients:
            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=3,
                read_timeout=30,
                max_pool_connections=max(10, self.target.connections),
            )
            if service == "s3" and self.endpoint != "AWS":
                config = config.merge(Config(s3={"addressing_style": "path"}))
            self._clients[service] = self._session.client(
                service,
                region_name=self.region,
                config=config,
                endpoint_url=self.target.endpoint_url,
            )
        return self._clients[service]

    def function_environment(self, function: str) -> dict[str, str]:
        """The environment of ``<stack>-<function>``; empty when it cannot be read (the
        target runs no functions, or the caller may not read them)."""
        if function not in self._environments:
            try:
                config = self.client("lambda").get_function_configuration(
                    FunctionName=f"{self.target.stack}-{function}"
                )
            except ClientError:
                config = {}
            self._environments[function] = dict(config.get("Environment", {}).get("Variables", {}))
        return self._environments[function]

    def queue_named(self, name: str) -> str | None:
        """The URL of queue ``name``, or ``None`` when there is none."""
        try:
            return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in QUEUE_MISSING:
                return None
            raise

    @cached_property
    def queue_url(self) -> str:
        """The request queue."""
        if self.target.queue_url:
            return self.target.queue_url
        name = f"{self.target.stack}-requests"
        url = self.queue_named(name)
        if url is None:
            raise CliError(
                f"no queue {name} at {self.endpoint} ({self.region}): is the stack deployed "
                "there? Name its prefix with --stack, or the queue with --queue-url"
            )
        return url

    @cached_property
    def dead_letter_queue_url(self) -> str:
        """The request queue's dead-letter queue, from its redrive policy."""
        if self.target.dead_letter_queue_url:
            return self.target.dead_letter_queue_url
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        policy = attributes.get("RedrivePolicy")
        if not policy:
            raise CliError(
                f"{self.queue_url} has no redrive policy, so no dead-letter queue: "
                "name one with --dead-letter-queue-url"
            )
        name = str(json.loads(policy)["deadLetterTargetArn"]).rsplit(":", 1)[-1]
        url = self.queue_named(name)
        if url is None:
            raise CliError(f"the dead-letter queue {name} named by {self.queue_url} is gone")
        return url

    @cached_property
    def failed_invocations_queue_url(self) -> str | None:
        """The functions' on-failure destination, if the stack has one."""
        return self.queue_named(f"{self.target.stack}-failed-invocations")

    @cached_property
    def bucket(self) -> str:
        """The data bucket."""
        if self.target.bucket:
            return self.target.bucket
        for function in ("consumer", "writer"):
            configured = self.function_environment(function).get("FANOUT_BUCKET")
            if configured:
                return configured
        account = self.client("sts").get_caller_identity()["Account"]
        name = f"{self.target.stack}-{account}-{self.region}"
        try:
            self.client("s3").head_bucket(Bucket=name)
        except ClientError as exc:
            raise CliError(
                f"no bucket {name} at {self.endpoint}: is the stack deployed there? "
                "Name the bucket with --bucket"
            ) from exc
        return name

    @cached_property
    def parquet_prefix(self) -> str:
        return _prefix(
            self.target.parquet_prefix
            or self.function_environment("writer").get("FANOUT_PARQUET_PREFIX")
            or "parquet/"
        )

    @cached_property
    def quarantine_prefix(self) -> str:
        return _prefix(
            self.target.quarantine_prefix
            or self.function_environment("consumer").get("FANOUT_QUARANTINE_PREFIX")
            or "quarantine/"
        )

    @cached_property
    def api_base_url(self) -> str:
        """The REST API's base URL (to list devices)."""
        found = (
            self.target.api_base_url
            or self.function_environment("producer").get("FANOUT_API_BASE_URL")
            or self.function_environment("consumer").get("FANOUT_API_BASE_URL")
        )
        if not found:
            raise CliError(
                "no API base URL to list devices from: give --api-base-url (or "
                "FANOUT_API_BASE_URL), or name the devices with --devices"
            )
        return found.rstrip("/")

    @property
    def consumer_log_group(self) -> str:
        return f"/aws/lambda/{self.target.stack}-consumer"
