"""The whole stack on one machine: emulator, sample API, Terraform, and the Lambda runner.

    with local_stack(StackConfig(devices=100, values=1000), work_dir) as stack:
        stack.runner.fire_schedule(stack.schedule)
        stack.runner.wait_idle(timeout=600)

Everything started here is stopped on exit, whatever happens.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fanout_core import aws
from localstack.faults import FaultPlan
from localstack.processes import (
    ServerProcess,
    fault_proxy,
    localstack_python,
    localstack_server,
    moto_server,
    sample_api,
)
from localstack.runner import (
    FunctionPool,
    LocalLambda,
    ScheduleTrigger,
    Wiring,
    discover,
    wiring_from_outputs,
)
from localstack.runtime import lambda_runtime
from localstack.sample_api import ApiConfig
from localstack.terraform import Terraform

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
EMULATORS = ("moto", "localstack")
VAR_FILES = {
    "moto": ("emulator.tfvars",),
    "localstack": ("emulator.tfvars", "localstack.tfvars"),
}
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class StackConfig:
    """What to run: the API's data, the faults to inject, and the stack's shape."""

    devices: int = 100
    values: int = 1000
    seed: int = 7
    faults: str = ""
    emulator: str = "moto"
    #: Concurrent invocations per function: every core by default (at least 2, AWS's
    #: minimum for an SQS mapping's maximum concurrency).
    concurrency: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    name_prefix: str = "fanout"
    region: str = "us-east-1"
    package_dir: Path = ROOT / "build" / "lambda"
    terraform_vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stack:
    """A running local stack."""

    config: StackConfig
    endpoint_url: str
    api_base_url: str
    outputs: dict[str, Any]
    wiring: Wiring
    runner: LocalLambda
    timings: dict[str, float]
    #: The background servers by role: ``emulator``, ``api`` and, with Firehose faults,
    #: ``fault_proxy``.
    servers: dict[str, ServerProcess] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator."""
        return _client(self.endpoint_url, self.config.region, service)

    @property
    def schedule(self) -> ScheduleTrigger:
        """The producer's schedule."""
        return self.schedule_of(self.outputs["producer_function_name"])

    def schedule_of(self, function: str) -> ScheduleTrigger:
        """The schedule that ticks ``function``."""
        return next(s for s in self.wiring.schedules if function in s.functions)

    @property
    def api(self) -> ApiConfig:
        return api_config(self.config)


def api_config(config: StackConfig) -> ApiConfig:
    """The sample API a stack runs: its data, and its faults sized to the consumer's limits."""
    return ApiConfig(
        seed=config.seed,
        devices=config.devices,
        values=config.values,
        faults=config.faults,
        # Just over the consumer's cap, and a hang well past its request timeout.
        oversize_bytes=int(config.terraform_vars.get("max_body_bytes", 8 * 1024 * 1024)) + 1024,
        hang_seconds=3 * float(config.terraform_vars.get("request_timeout_seconds", 10)),
    )


@cache
def _client(endpoint_url: str, region: str, service: str) -> Any:
    return aws.new_client(
        service,
        region,
        endpoint_url=endpoint_url,
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@contextmanager
def local_stack(config: StackConfig, work_dir: Path) -> Iterator[Stack]:
    """Start, provision and wire the stack in ``work_dir``; stop everything on exit."""
    work_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.monotonic()
    with ExitStack() as cleanup:
        plan = FaultPlan.parse(config.faults, seed=config.seed)
        if config.emulator not in EMULATORS:
            raise ValueError(f"unknown emulator {config.emulator!r}; choose from {EMULATORS}")
        if config.emulator == "localstack":
            python = localstack_python(ROOT / "build" / "localstack")
            emulator = cleanup.enter_context(
                localstack_server(python, work_dir / "logs", work_dir / "localstack-state")
            )
        else:
            emulator = cleanup.enter_context(moto_server(work_dir / "logs"))
        api = cleanup.enter_context(sample_api(api_config(config), work_dir / "logs"))
        function_env: dict[str, dict[str, str]] = {}
        proxy: ServerProcess | None = None
        if plan.rate("firehose-partial") or plan.rate("firehose-call"):
            proxy = cleanup.enter_context(
                fault_proxy(emulator.url, config.faults, config.seed, work_dir / "logs")
            )
            function_env[f"{config.name_prefix}-consumer"] = {
                "AWS_ENDPOINT_URL_FIREHOSE": proxy.url
            }
        timings["servers"] = time.monotonic() - started
        # Terraform's provider reads credentials from the environment.
        os.environ.update({k: v for k, v in EMULATOR_CREDENTIALS.items() if k not in os.environ})
        terraform = Terraform(work_dir / "terraform")
        terraform.init()
        outputs = terraform.apply(
            {
                "aws_endpoint_url": emulator.url,
                "aws_region": config.region,
                "name_prefix": config.name_prefix,
                "api_base_url": api.url,
                "package_dir": str(config.package_dir),
                "consumer_max_concurrency": config.concurrency,
                **config.terraform_vars,
            },
            var_files=VAR_FILES[config.emulator],
        )
        timings["provision"] = time.monotonic() - started - timings["servers"]

        def clients(service: str) -> Any:
            return _client(emulator.url, config.region, service)

        # moto keeps the functions Terraform created: their configuration is read back from its
        # Lambda API. LocalStack without Docker has none: Terraform's outputs describe them.
        account = clients("sts").get_caller_identity()["Account"]
        if config.emulator == "localstack":
            wiring = wiring_from_outputs(outputs, config.region, account)
        else:
            wiring = discover(clients, config.name_prefix, config.region)
        pool = FunctionPool(
            wiring,
            package_dir=config.package_dir,
            work_dir=work_dir,
            runtime=lambda_runtime(ROOT / "build" / "runtime"),
            aws_env={
                **EMULATOR_CREDENTIALS,
                "AWS_ENDPOINT_URL": emulator.url,
                "AWS_REGION": config.region,
                "AWS_DEFAULT_REGION": config.region,
                # Lambda tells functions where its X-Ray daemon listens; here a local one.
                "AWS_XRAY_DAEMON_ADDRESS": os.environ.get(
                    "AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000"
                ),
            },
            function_env=function_env,
        )
        cleanup.callback(pool.close)
        runner = cleanup.enter_context(
            LocalLambda(
                wiring,
                pool,
                clients,
                account=account,
                async_concurrency=config.concurrency,
                cut_rate=plan.rate("timeout"),
                seed=config.seed,
            )
        )
        timings["ready"] = time.monotonic() - started
        servers = {"emulator": emulator, "api": api}
        if proxy is not None:
            servers["fault_proxy"] = proxy
        yield Stack(config, emulator.url, api.url, outputs, wiring, runner, timings, servers)
