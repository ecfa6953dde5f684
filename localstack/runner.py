"""Run the stack's functions locally, with Lambda's semantics, where the emulator cannot.

The wiring is read from the emulator's own control plane, which Terraform configured:
functions (handler, environment, timeout, memory, dead-letter target) from the Lambda
API, SQS event source mappings (batch size, batching window, maximum concurrency,
``ReportBatchItemFailures``), S3 bucket notifications (events, prefix) and EventBridge
rules and targets. Nothing is configured twice.

Each function runs from the package Terraform deployed: the runner finds the zip under
the package folder whose SHA-256 equals the deployed ``CodeSha256``, unpacks it, and
runs it in worker processes under the runtime's Python with only what Lambda's runtime
provides (boto3) beside it.

Semantics kept:

* SQS event source: long-polls up to the batch size within the batching window; on a
  function error or timeout nothing is deleted (the visibility timeout and the queue's
  redrive policy take over); on success everything is deleted except the items named in
  ``batchItemFailures`` (an unknown or empty ``itemIdentifier`` fails the whole batch).
* S3 notifications and schedules invoke asynchronously: an error is retried
  ``MaximumRetryAttempts`` times, then the event goes to the function's on-failure
  destination (an SQS queue) in Lambda's destination record format. Retry delays are
  seconds here, not AWS's minutes.
* Timeouts are enforced by killing the worker; ``get_remaining_time_in_millis`` counts
  down to that moment. A killed worker is replaced (a cold start), as in Lambda.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import queue
import random
import subprocess
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from localstack import eventbridge

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
INIT_TIMEOUT_SECONDS = 30.0
ASYNC_RETRY_DELAYS = (1.0, 2.0)
SHORT_POLL_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function, as the Lambda API describes it."""

    name: str
    arn: str
    handler: str
    timeout: int
    memory_mb: int
    environment: Mapping[str, str]
    code_sha256: str
    on_failure_arn: str | None
    max_retry_attempts: int


@dataclass(frozen=True)
class SqsMapping:
    """An SQS event source mapping."""

    function: str
    queue_arn: str
    queue_url: str
    batch_size: int
    window_seconds: int
    max_concurrency: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class S3Trigger:
    """A bucket notification that invokes a function.

    ``queue_url`` is set where the notification goes to a queue (a target without
    functions): the runner reads S3's events from it instead of watching the bucket.
    """

    bucket: str
    function: str
    events: tuple[str, ...]
    prefix: str
    suffix: str
    queue_url: str | None = None


@dataclass(frozen=True)
class ScheduleTrigger:
    """An EventBridge rule with a schedule and the functions it targets."""

    rule_name: str
    rule_arn: str
    schedule_expression: str
    functions: tuple[str, ...]
    queue_url: str | None = None
    #: The targets' input transformer (infra/'s producer_shards), as EventBridge's API or
    #: Terraform's output spells it; None: the target gets the Scheduled Event itself.
    input_transformer: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Wiring:
    """Everything the runner delivers, read from the emulator."""

    functions: Mapping[str, FunctionSpec]
    sqs_mappings: tuple[SqsMapping, ...]
    s3_triggers: tuple[S3Trigger, ...]
    schedules: tuple[ScheduleTrigger, ...]
    region: str


def _name_from_arn(arn: str) -> str:
    return arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]


def discover(clients: Callable[[str], Any], name_prefix: str, region: str) -> Wiring:
    """Read the wiring of the functions named ``<name_prefix>-*`` from the emulator."""
    functions = _functions(clients("lambda"), name_prefix)
    if not functions:
        raise LookupError(
            f"no functions named {name_prefix}-* in the emulator: was it provisioned?"
        )
    arns = {spec.arn: name for name, spec in functions.items()}
    return Wiring(
        functions=functions,
        sqs_mappings=_sqs_mappings(clients("lambda"), clients("sqs"), functions),
        s3_triggers=_s3_triggers(clients("s3"), arns),
        schedules=_schedules(clients("events"), name_prefix, arns),
        region=region,
    )


def wiring_from_outputs(outputs: Mapping[str, Any], region: str, account: str) -> Wiring:
    """The wiring Terraform describes in its ``functions`` and ``event_sources`` outputs.

    For a target without functions (LocalStack without Docker): the outputs are made from
    the same locals the Lambda resources are, so this is the configuration AWS would get.
    """
    specs = outputs["functions"]
    names = {key: spec["function_name"] for key, spec in specs.items()}
    functions = {
        spec["function_name"]: FunctionSpec(
            name=spec["function_name"],
            arn=f"arn:aws:lambda:{region}:{account}:function:{spec['function_name']}",
            handler=spec["handler"],
            timeout=int(spec["timeout"]),
            memory_mb=int(spec["memory_mb"]),
            environment=dict(spec["environment"]),
            code_sha256=spec["code_sha256"],
            on_failure_arn=spec.get("on_failure_arn"),
            max_retry_attempts=int(spec.get("max_retry_attempts") or 0),
        )
        for spec in specs.values()
    }
    sources = outputs["event_sources"]
    return Wiring(
        functions=functions,
        sqs_mappings=tuple(
            SqsMapping(
                function=names[m["function"]],
                queue_arn=m["queue_arn"],
                queue_url=m["queue_url"],
                batch_size=int(m["batch_size"]),
                window_seconds=int(m["window_seconds"]),
                max_concurrency=int(m["max_concurrency"]),
                report_batch_item_failures=bool(m["report_batch_item_failures"]),
            )
            for m in sources["sqs"]
        ),
        s3_triggers=tuple(
            S3Trigger(
                bucket=t["bucket"],
                function=names[t["function"]],
                events=tuple(t["events"]),
                prefix=t["prefix"],
                suffix="",
                queue_url=t.get("queue_url"),
            )
            for t in sources["s3"]
        ),
        schedules=tuple(
            ScheduleTrigger(
                rule_name=s["rule_name"],
                rule_arn=s["rule_arn"],
                schedule_expression=s["expression"],
                functions=(names[s["function"]],),
                queue_url=s.get("queue_url"),
                input_transformer=s.get("input_transformer"),
            )
            for s in sources["schedules"]
        ),
        region=region,
    )


def _functions(lam: Any, name_prefix: str) -> dict[str, FunctionSpec]:
    functions: dict[str, FunctionSpec] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for summary in page["Functions"]:
            name = summary["FunctionName"]
            if not name.startswith(f"{name_prefix}-"):
                continue
            config = lam.get_function_configuration(FunctionName=name)
            try:
                invoke_config = lam.get_function_event_invoke_config(FunctionName=name)
            except lam.exceptions.ResourceNotFoundException:
                invoke_config = {}
            on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get(
                "Destination"
            ) or config.get("DeadLetterConfig", {}).get("TargetArn")
            functions[name] = FunctionSpec(
                name=name,
                arn=config["FunctionArn"],
                handler=config["Handler"],
                timeout=int(config.get("Timeout", 3)),
                memory_mb=int(config.get("MemorySize", 128)),
                environment=config.get("Environment", {}).get("Variables", {}),
                code_sha256=config["CodeSha256"],
                on_failure_arn=on_failure,
                max_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
            )
    return functions


def _sqs_mappings(
    lam: Any, sqs: Any, functions: Mapping[str, FunctionSpec]
) -> tuple[SqsMapping, ...]:
    mappings = []
    for name in functions:
        for mapping in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            source = mapping["EventSourceArn"]
            if ":sqs:" not in source:
                continue
            scaling = mapping.get("ScalingConfig") or {}
            mappings.append(
                SqsMapping(
                    function=name,
                    queue_arn=source,
                    queue_url=sqs.get_queue_url(QueueName=source.rsplit(":", 1)[-1])["QueueUrl"],
                    batch_size=int(mapping.get("BatchSize") or 10),
                    window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds") or 0),
                    max_concurrency=int(scaling.get("MaximumConcurrency") or 2),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (mapping.get("FunctionResponseTypes") or []),
                )
            )
    return tuple(mappings)


def _s3_triggers(s3: Any, arns: Mapping[str, str]) -> tuple[S3Trigger, ...]:
    triggers = []
    for bucket in s3.list_buckets().get("Buckets", []):
        config = s3.get_bucket_notification_configuration(Bucket=bucket["Name"])
        for notification in config.get("LambdaFunctionConfigurations", []):
            target = arns.get(notification["LambdaFunctionArn"])
            if target is None:
                continue
            key_filter = notification.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            rules = {rule["Name"].lower(): rule["Value"] for rule in key_filter}
            triggers.append(
                S3Trigger(
                    bucket=bucket["Name"],
                    function=target,
                    events=tuple(notification["Events"]),
                    prefix=rules.get("prefix", ""),
                    suffix=rules.get("suffix", ""),
                )
            )
    return tuple(triggers)


def _schedules(
    events: Any, name_prefix: str, arns: Mapping[str, str]
) -> tuple[ScheduleTrigger, ...]:
    schedules = []
    for rule in events.list_rules(NamePrefix=name_prefix).get("Rules", []):
        if not rule.get("ScheduleExpression"):
            continue
        targets = [
            t for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"] if t["Arn"] in arns
        ]
        if targets:
            schedules.append(
                ScheduleTrigger(
                    rule["Name"],
                    rule["Arn"],
                    rule["ScheduleExpression"],
                    tuple(arns[t["Arn"]] for t in targets),
                    input_transformer=next(
                        (t["InputTransformer"] for t in targets if t.get("InputTransformer")),
                        None,
                    ),
                )
            )
    return tuple(schedules)


@dataclass(frozen=True)
class Runtime:
    """The interpreter functions run under and what Lambda's runtime puts beside them."""

    python: str
    provided_paths: tuple[str, ...] = ()


def code_folder(spec: FunctionSpec, package_dir: Path, unpack_dir: Path) -> Path:
    """Unpack the zip under ``package_dir`` whose SHA-256 is the deployed ``CodeSha256``.

    Raises:
        LookupError: If no package matches what is deployed.
    """
    for package in sorted(package_dir.glob("*.zip")):
        digest = base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()
        if digest != spec.code_sha256:
            continue
        target = unpack_dir / f"{spec.name}-{hashlib.sha256(digest.encode()).hexdigest()[:12]}"
        if not (target / ".unpacked").exists():
            with zipfile.ZipFile(package) as archive:
                archive.extractall(target)
            (target / ".unpacked").touch()
        return target
    raise LookupError(
        f"the code deployed as {spec.name} (CodeSha256 {spec.code_sha256}) matches no zip in "
        f"{package_dir}: rebuild with `make package` and apply again"
    )


@dataclass
class Invocation:
    """One finished invocation."""

    request_id: str
    function: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    seconds: float = 0.0
    timed_out: bool = False


class _Worker:
    """One execution environment: a process that has imported the handler."""

    def __init__(
        self,
        spec: FunctionSpec,
        code: Path,
        runtime: Runtime,
        env: Mapping[str, str],
        log_file: Any,
    ) -> None:
        self.spec = spec
        paths = os.pathsep.join([str(code), *runtime.provided_paths])
        environment = {
            **env,
            **spec.environment,
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "PYTHONPATH": paths,
            # Bytecode goes to a cache beside the unpacked code, which stays as deployed;
            # without it every cold start recompiles aiohttp and pyarrow's Python modules.
            "PYTHONPYCACHEPREFIX": str(code.parent.parent / "pycache"),
        }
        self.process = subprocess.Popen(  # noqa: S603
            [runtime.python, "-P", "-u", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            text=True,
            bufsize=1,
        )
        self._responses: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_responses, daemon=True).start()
        threading.Thread(target=self._copy_log, args=(log_file,), daemon=True).start()
        ready = self._next_response(INIT_TIMEOUT_SECONDS)
        self.init_error = None if ready is None else json.loads(ready).get("init_error")
        if ready is None:
            self.kill()
            self.init_error = {"errorType": "InitTimeout", "errorMessage": "init did not finish"}

    def _read_responses(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._responses.put(line)
        self._responses.put(None)

    def _copy_log(self, log_file: Any) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            log_file.write(line if line.endswith("\n") else line + "\n")
            log_file.flush()

    def _next_response(self, timeout: float) -> str | None:
        try:
            return self._responses.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Any, request_id: str, timeout: float | None = None) -> Invocation:
        started = time.monotonic()
        limit = self.spec.timeout if timeout is None else timeout
        deadline_ms = int(time.time() * 1000) + int(limit * 1000)
        request = {
            "request_id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "function_arn": self.spec.arn,
            "trace_id": trace_header(),
        }
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return Invocation(request_id, self.spec.name, False, error=_crash("worker exited"))
        line = self._next_response(limit + 0.25)
        seconds = time.monotonic() - started
        if line is None:
            timed_out = self.alive
            self.kill()
            message = (
                f"Task timed out after {limit:.2f} seconds"
                if timed_out
                else "Runtime exited without providing a reason"
            )
            return Invocation(
                request_id,
                self.spec.name,
                False,
                error=_crash(message, timed_out),
                seconds=seconds,
                timed_out=timed_out,
            )
        response = json.loads(line)
        if response.get("ok"):
            return Invocation(request_id, self.spec.name, True, response["result"], seconds=seconds)
        return Invocation(request_id, self.spec.name, False, error=response, seconds=seconds)

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait(timeout=10)


def trace_header() -> str:
    """An X-Ray trace header for one invocation, as Lambda sets ``_X_AMZN_TRACE_ID``.

    Every local invocation is sampled (Lambda samples by rule), so traces can be inspected.
    """
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def _crash(message: str, timed_out: bool = False) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
        "errorMessage": message,
    }


class FunctionPool:
    """Warm execution environments for every function, created on demand."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        package_dir: Path,
        work_dir: Path,
        runtime: Runtime,
        aws_env: Mapping[str, str],
        function_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.wiring = wiring
        self.package_dir = package_dir
        self.runtime = runtime
        self.aws_env = dict(aws_env)
        self.function_env = {name: dict(env) for name, env in (function_env or {}).items()}
        self.unpack_dir = work_dir / "code"
        log_dir = work_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_files = {
            name: (log_dir / f"{name}.log").open("a", buffering=1) for name in wiring.functions
        }
        self._idle: dict[str, list[_Worker]] = {name: [] for name in wiring.functions}
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self.stats: Counter[str] = Counter()
        self.last_finished = 0.0
        self._code = {
            name: code_folder(spec, package_dir, self.unpack_dir)
            for name, spec in wiring.functions.items()
        }

    def invoke(self, function: str, event: Any, timeout: float | None = None) -> Invocation:
        """Invoke ``function`` synchronously with ``event`` in a warm (or new) environment.

        ``timeout`` shortens this one invocation's life (fault injection); by default it is
        the function's configured timeout.
        """
        spec = self.wiring.functions[function]
        request_id = str(uuid.uuid4())
        with self._lock:
            worker = self._idle[function].pop() if self._idle[function] else None
        if worker is None or not worker.alive:
            env = {**self.aws_env, **self.function_env.get(function, {})}
            worker = _Worker(
                spec, self._code[function], self.runtime, env, self._log_files[function]
            )
            with self._lock:
                self._all.append(worker)
                self.stats[f"{function}.cold_starts"] += 1
        if worker.init_error:
            outcome = Invocation(request_id, function, False, error=worker.init_error)
        else:
            outcome = worker.invoke(event, request_id, timeout)
        with self._lock:
            self.last_finished = time.monotonic()
            self.stats[f"{function}.invocations"] += 1
            if not outcome.ok:
                self.stats[f"{function}.errors"] += 1
                self.stats[f"{function}.timeouts"] += outcome.timed_out
            if worker.alive:
                self._idle[function].append(worker)
        if not outcome.ok:
            log.warning(
                "%s failed: %s", function, (outcome.error or {}).get("errorMessage", "")[:300]
            )
        return outcome

    def worker_pids(self) -> dict[str, list[int]]:
        """The process ids of every environment started so far, by function (those that
        exited included: their ids may no longer name a process)."""
        with self._lock:
            workers = list(self._all)
        pids: dict[str, list[int]] = {name: [] for name in self.wiring.functions}
        for worker in workers:
            pids[worker.spec.name].append(worker.process.pid)
        return pids

    def close(self) -> None:
        """Stop every environment and close the logs."""
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            if worker.process.stdin:
                worker.process.stdin.close()
            try:
                worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
        for handle in self._log_files.values():
            handle.close()


def sqs_event_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda puts it in ``event["Records"]``."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: message.get("Attributes", {}).get(key, "")
            for key in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
        },
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def s3_event(bucket: str, key: str, size: int, etag: str, region: str) -> dict[str, Any]:
    """An ``ObjectCreated:Put`` notification as S3 sends it (the key URL-encoded)."""
    now = datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:LOCALRUNNER"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "fanout-local-runner",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCALRUNNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag.strip('"'),
                        "sequencer": f"{time.time_ns():X}",
                    },
                },
            }
        ]
    }


def scheduled_event(
    rule: ScheduleTrigger, region: str, account: str, at: datetime
) -> dict[str, Any]:
    """The payload EventBridge sends a target when a schedule fires."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule.rule_arn],
        "detail": {},
    }


@dataclass
class _AsyncEvent:
    function: str
    event: Any
    future: Future[Invocation]
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class RunnerStats:
    """What the runner delivered."""

    sqs_batches: int = 0
    sqs_messages: int = 0
    batch_item_failures: int = 0
    failed_batches: int = 0
    s3_events: int = 0
    async_retries: int = 0
    async_dead_lettered: int = 0
    cut_invocations: int = 0
    schedule_ticks: int = 0
    #: Ticks that arrived already through their rule's input transformer.
    shaped_ticks: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class LocalLambda:
    """Delivers SQS batches, S3 notifications and schedules to the functions.

    Use as a context manager: pollers start on entry and stop on exit.
    """

    def __init__(
        self,
        wiring: Wiring,
        pool: FunctionPool,
        clients: Callable[[str], Any],
        *,
        poll_seconds: float = 0.5,
        async_concurrency: int = 2,
        max_concurrency: int | None = None,
        account: str = "123456789012",
        cut_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.wiring = wiring
        self.pool = pool
        self.clients = clients
        self.poll_seconds = poll_seconds
        self.account = account
        self.cut_rate = cut_rate
        self._random = random.Random(seed)  # noqa: S311 (fault draws, not secrets)
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._async: queue.Queue[_AsyncEvent] = queue.Queue()
        self._async_concurrency = async_concurrency
        self._max_concurrency = max_concurrency
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._seen: dict[tuple[str, str], str] = {}
        self._scans = 0

    def __enter__(self) -> LocalLambda:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start one poller per mapping concurrency slot, the S3 watcher, the readers of
        notification and tick queues, and the async workers."""
        for trigger in self._watched:
            self._scan(trigger, deliver=False)  # notifications cover objects created from now on
        for mapping in self.wiring.sqs_mappings:
            # As Lambda scales an SQS source: up to the mapping's maximum concurrency, each
            # invocation in its own process (a tighter cap is for benchmarks).
            slots = min(mapping.max_concurrency, self._max_concurrency or mapping.max_concurrency)
            for slot in range(slots):
                self._spawn(self._poll_sqs, mapping, name=f"sqs-{mapping.function}-{slot}")
        if self._watched:
            self._spawn(self._watch_s3, name="s3-notifications")
        for queue_url in self._event_queues:
            self._spawn(self._poll_events, queue_url, name=f"events-{queue_url.rsplit('/', 1)[-1]}")
        for slot in range(self._async_concurrency):
            self._spawn(self._run_async, name=f"async-{slot}")

    @property
    def _watched(self) -> list[S3Trigger]:
        """Notifications the runner must see for itself, by watching the bucket."""
        return [t for t in self.wiring.s3_triggers if t.queue_url is None]

    @property
    def _event_queues(self) -> list[str]:
        """Queues S3 notifications and schedule ticks arrive on (targets without functions)."""
        urls = [t.queue_url for t in self.wiring.s3_triggers] + [
            s.queue_url for s in self.wiring.schedules
        ]
        return sorted({url for url in urls if url})

    def _poll_events(self, queue_url: str) -> None:
        """Deliver what arrives on a notification or tick queue as S3 or EventBridge would:
        an asynchronous invocation of the function the event is for."""
        sqs = self.clients("sqs")
        while not self._stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                with self._working():
                    for function, event in self._route(json.loads(message["Body"])):
                        self.invoke_async(function, event)
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _route(self, event: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The function(s) an S3 notification or a schedule tick read from a queue is for."""
        if event.get("detail-type") == "Scheduled Event":
            self.stats.schedule_ticks += 1
            rules = set(event.get("resources", []))
            return [
                (function, self._shaped(schedule, event))
                for schedule in self.wiring.schedules
                if schedule.rule_arn in rules
                or schedule.rule_name in {r.rsplit("/", 1)[-1] for r in rules}
                for function in schedule.functions
            ]
        routed = []
        for record in event.get("Records", []):  # S3's test event has none and is dropped
            bucket = record.get("s3", {}).get("bucket", {}).get("name")
            key = unquote_plus(record.get("s3", {}).get("object", {}).get("key", ""))
            for trigger in self.wiring.s3_triggers:
                if trigger.bucket == bucket and key.startswith(trigger.prefix):
                    self.stats.s3_events += 1
                    routed.append((trigger.function, {"Records": [record]}))
        return routed

    def _shaped(self, schedule: ScheduleTrigger, event: Mapping[str, Any]) -> Any:
        """A tick as its target gets it. An emulator that applies the rule's input
        transformer (LocalStack) sends it shaped, naming its shard; else shape it here."""
        if "shard" in event:
            self.stats.shaped_ticks += 1
            return event
        if schedule.input_transformer:
            return eventbridge.transform(schedule.input_transformer, event)
        return event

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop polling and wait for in-flight invocations to finish."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        self._threads.clear()

    @contextmanager
    def _working(self) -> Iterator[None]:
        with self._busy_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _deliver_batch(self, mapping: SqsMapping, messages: list[dict[str, Any]]) -> None:
        with self._working():
            self._deliver_batch_now(mapping, messages)

    def _deliver_batch_now(self, mapping: SqsMapping, messages: list[dict[str, Any]]) -> None:
        sqs = self.clients("sqs")
        event = {
            "Records": [
                sqs_event_record(m, mapping.queue_arn, self.wiring.region) for m in messages
            ]
        }
        outcome = self.pool.invoke(mapping.function, event, self._cut(messages))
        self.stats.sqs_batches += 1
        self.stats.sqs_messages += len(messages)
        if not outcome.ok:
            self.stats.failed_batches += 1
            return  # nothing deleted: visibility timeout, then redrive
        keep = (
            _failed_items(outcome.result, messages) if mapping.report_batch_item_failures else set()
        )
        if keep is None:
            self.stats.failed_batches += 1
            return
        self.stats.batch_item_failures += len(keep)
        done = [m for m in messages if m["MessageId"] not in keep]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            response = sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                log.warning("DeleteMessageBatch failed for %d entries", len(response["Failed"]))

    def _cut(self, messages: list[dict[str, Any]]) -> float | None:
        """A shortened life for this invocation (the ``timeout`` fault), or ``None``.

        Only batches of first deliveries are cut, so no message is cut twice; the first such
        batch always is, so a run with the fault on meets it at least once.
        """
        if not self.cut_rate:
            return None
        if any(m.get("Attributes", {}).get("ApproximateReceiveCount") != "1" for m in messages):
            return None
        if self.stats.cut_invocations and self._random.random() >= self.cut_rate:
            return None
        self.stats.cut_invocations += 1
        return self._random.uniform(1.0, 6.0)

    def _poll_sqs(self, mapping: SqsMapping) -> None:
        sqs = self.clients("sqs")
        while not self._stop.is_set():
            messages: list[dict[str, Any]] = []
            window_ends: float | None = None
            while len(messages) < mapping.batch_size and not self._stop.is_set():
                left = 1.0 if window_ends is None else window_ends - time.monotonic()
                # SQS waits whole seconds: under one left, poll without waiting, and pause
                # a little between empty polls rather than spin on the emulator.
                wait = max(0, min(1, int(left)))
                response = sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
                    WaitTimeSeconds=wait,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                received = response.get("Messages", [])
                if not received and wait == 0 and window_ends is not None:
                    self._stop.wait(min(max(left, 0.0), SHORT_POLL_PAUSE_SECONDS))
                if received and window_ends is None:
                    window_ends = time.monotonic() + mapping.window_seconds
                # A message whose visibility lapsed inside the window comes back: keep one
                # copy, with its newest receipt handle.
                fresh = {m["MessageId"]: m for m in received}
                messages = [m for m in messages if m["MessageId"] not in fresh] + list(
                    fresh.values()
                )
                if window_ends is not None and time.monotonic() >= window_ends:
                    break
            if messages:
                self._deliver_batch(mapping, messages)

    def _scan(self, trigger: S3Trigger, *, deliver: bool) -> None:
        s3 = self.clients("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=trigger.bucket, Prefix=trigger.prefix
        ):
            for item in page.get("Contents", []):
                key, etag = item["Key"], item["ETag"]
                if (
                    not key.endswith(trigger.suffix)
                    or self._seen.get((trigger.bucket, key)) == etag
                ):
                    continue
                self._seen[(trigger.bucket, key)] = etag
                if deliver and any(e.startswith("s3:ObjectCreated:") for e in trigger.events):
                    self.stats.s3_events += 1
                    event = s3_event(trigger.bucket, key, item["Size"], etag, self.wiring.region)
                    self.invoke_async(trigger.function, event)

    def _watch_s3(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            for trigger in self._watched:
                self._scan(trigger, deliver=True)
            self._scans += 1

    def invoke_async(self, function: str, event: Any) -> Future[Invocation]:
        """Queue an asynchronous invocation; the future holds its final outcome."""
        future: Future[Invocation] = Future()
        with self._busy_lock:
            self._busy += 1
        self._async.put(_AsyncEvent(function, event, future))
        return future

    def _run_async(self) -> None:
        while not (self._stop.is_set() and self._async.empty()):
            try:
                item = self._async.get(timeout=0.2)
            except queue.Empty:
                continue
            delay = item.not_before - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.2))
                self._async.put(item)
                continue
            outcome = self.pool.invoke(item.function, item.event)
            spec = self.wiring.functions[item.function]
            if not outcome.ok and item.attempt < spec.max_retry_attempts:
                self.stats.async_retries += 1
                item.attempt += 1
                item.not_before = (
                    time.monotonic()
                    + ASYNC_RETRY_DELAYS[min(item.attempt - 1, len(ASYNC_RETRY_DELAYS) - 1)]
                )
                self._async.put(item)
                continue
            if not outcome.ok:
                self._dead_letter(spec, item.event, outcome, item.attempt + 1)
            item.future.set_result(outcome)
            with self._busy_lock:
                self._busy -= 1

    def _dead_letter(
        self, spec: FunctionSpec, event: Any, outcome: Invocation, attempts: int
    ) -> None:
        """Send a failed asynchronous event to the function's on-failure destination, in
        the record format Lambda uses for destinations."""
        self.stats.async_dead_lettered += 1
        if not spec.on_failure_arn or ":sqs:" not in spec.on_failure_arn:
            log.error(
                "%s failed with no on-failure destination; event dropped as Lambda would", spec.name
            )
            return
        sqs = self.clients("sqs")
        url = sqs.get_queue_url(QueueName=spec.on_failure_arn.rsplit(":", 1)[-1])["QueueUrl"]
        error = outcome.error or {}
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "requestContext": {
                "requestId": outcome.request_id,
                "functionArn": f"{spec.arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                k: error.get(k) for k in ("errorMessage", "errorType", "stackTrace")
            },
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    def fire_schedule(
        self, rule: ScheduleTrigger, at: datetime | None = None
    ) -> list[Future[Invocation]]:
        """Fire ``rule`` now (or as if at ``at``): each target gets the Scheduled Event,
        through the rule's input transformer if it has one."""
        event = scheduled_event(rule, self.wiring.region, self.account, at or datetime.now(UTC))
        if rule.input_transformer:
            event = eventbridge.transform(rule.input_transformer, event)
        return [self.invoke_async(function, event) for function in rule.functions]

    def idle(self) -> bool:
        """True when no message waits or is in flight, nothing is being delivered, and the
        S3 watcher has scanned since."""
        with self._busy_lock:
            if self._busy:
                return False
        sqs = self.clients("sqs")
        for queue_url in [m.queue_url for m in self.wiring.sqs_mappings] + self._event_queues:
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            if any(int(value) for value in attributes.values()):
                return False
        if not self._watched:
            with self._busy_lock:
                return self._busy == 0
        scans = self._scans
        deadline = time.monotonic() + 10 * self.poll_seconds + 5
        while self._scans < scans + 2 and time.monotonic() < deadline:
            time.sleep(self.poll_seconds / 4)
        with self._busy_lock:
            return self._busy == 0

    def wait_idle(self, timeout: float, on_tick: Callable[[], None] | None = None) -> bool:
        """Wait until :meth:`idle` holds twice in a row; False if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            streak = streak + 1 if self.idle() else 0
            if streak >= 2:
                return True
            if on_tick:
                on_tick()
            time.sleep(0.5)
        return False


def _failed_items(result: Any, messages: list[dict[str, Any]]) -> set[str] | None:
    """Message ids to keep, per the partial batch response; ``None`` fails the whole batch.

    As in Lambda: a null response or a null/empty ``batchItemFailures`` is a complete
    success; a response that is not an object, or an item whose ``itemIdentifier`` is
    empty or not a message of the batch, is a complete failure.
    """
    if result is None:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    ids = {m["MessageId"] for m in messages}
    keep = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in ids:
            return None
        keep.add(identifier)
    return keep
