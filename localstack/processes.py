"""Background servers the local stack starts and always stops: an emulator (moto or
LocalStack), the sample API, the Firehose fault proxy.

Each runs in its own process, on 127.0.0.1 only, with its output in a log file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from localstack_client.config import get_service_endpoint

from localstack.sample_api import ApiConfig, free_port

#: LocalStack without Docker, as this machine runs it: its runtime on Python 3.13 in a
#: virtual environment of its own, with the pins that make 2026.3.0 start.
LOCALSTACK_PYTHON_VERSION = "3.13"
LOCALSTACK_REQUIREMENTS = (
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl==25.3.0",
    "cryptography<47",
)


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1, stopped (with its children) on exit."""

    def __init__(
        self,
        name: str,
        command: list[str],
        url: str,
        ready_path: str,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        cleanup: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.command = command
        self.url = url
        self.ready_path = ready_path
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.cleanup = cleanup
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (its session leader), else ``None``."""
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid

    def start(self, timeout: float | None = None) -> ServerProcess:
        timeout = timeout or self.start_timeout
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.cwd is not None:
            self.cwd.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env,
            cwd=self.cwd,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1):  # noqa: S310
                    return self
            except urllib.error.HTTPError:
                return self  # it answers
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer on {self.url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def moto_server(log_dir: Path, port: int | None = None) -> ServerProcess:
    """moto's server (S3, SQS, Firehose, Lambda, IAM, EventBridge, Logs...) on 127.0.0.1,
    with the SQS fixes of :mod:`localstack.emulator`."""
    port = port or free_port()
    return ServerProcess(
        "moto",
        [sys.executable, "-m", "localstack.emulator", "-H", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}",
        "/moto-api/data.json",
        log_dir / "moto.log",
    )


def sample_api(config: ApiConfig, log_dir: Path, port: int | None = None) -> ServerProcess:
    """The sample IoT API; its base URL is ``http://127.0.0.1:<port>/v1``."""
    port = port or free_port()
    options = {
        "--port": port,
        "--devices": config.devices,
        "--values": config.values,
        "--seed": config.seed,
        "--page-size": config.page_size,
        "--faults": config.faults,
        "--oversize-bytes": config.oversize_bytes,
        "--hang-seconds": config.hang_seconds,
    }
    command = [sys.executable, "-m", "localstack.sample_api"]
    for flag, value in options.items():
        command += [flag, str(value)]
    return ServerProcess(
        "sample-api",
        command,
        f"http://127.0.0.1:{port}/v1",
        "/devices?limit=1",
        log_dir / "sample-api.log",
    )


def fault_proxy(target: str, faults: str, seed: int, log_dir: Path) -> ServerProcess:
    """The Firehose fault proxy in front of ``target`` (see :mod:`localstack.fault_proxy`)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "localstack.fault_proxy",
        "--target",
        target,
        "--faults",
        faults,
        "--seed",
        str(seed),
        "--port",
        str(port),
    ]
    return ServerProcess(
        "fault-proxy",
        command,
        f"http://127.0.0.1:{port}",
        "/_fault_proxy/stats",
        log_dir / "fault-proxy.log",
    )


def localstack_python(cache_dir: Path) -> str:
    """The interpreter of LocalStack's own virtual environment, created on first use.

    Its Python is ``FANOUT_LOCALSTACK_PYTHON``, else pyenv's 3.13, else ``python3.13``.

    Raises:
        FileNotFoundError: When no Python 3.13 is found.
    """
    digest = hashlib.sha256(json.dumps(LOCALSTACK_REQUIREMENTS).encode()).hexdigest()[:12]
    venv = cache_dir.resolve() / f"localstack-{digest}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return str(python)
    base = _python_313()
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *LOCALSTACK_REQUIREMENTS],
        check=True,
    )  # fmt: skip
    (venv / ".complete").touch()
    return str(python)


def _python_313() -> str:
    configured = os.environ.get("FANOUT_LOCALSTACK_PYTHON")
    if configured:
        return configured
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(
        root.glob(f"versions/{LOCALSTACK_PYTHON_VERSION}.*/bin/python{LOCALSTACK_PYTHON_VERSION}")
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(f"python{LOCALSTACK_PYTHON_VERSION}")
    if on_path:
        return on_path
    raise FileNotFoundError(
        f"LocalStack runs here on Python {LOCALSTACK_PYTHON_VERSION}, and none was found: "
        f"install it (`pyenv install {LOCALSTACK_PYTHON_VERSION}`) or set FANOUT_LOCALSTACK_PYTHON"
    )


def localstack_server(
    python: str, log_dir: Path, state_dir: Path, port: int | None = None
) -> ServerProcess:
    """LocalStack's runtime started directly (no Docker, no CLI, no account) on 127.0.0.1.

    Its files go under ``state_dir`` (removed when it stops), and it runs from there, so
    this repository's ``localstack/`` folder never shadows LocalStack's own package.
    """
    port = port or free_port()
    host = f"127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        GATEWAY_LISTEN=host,
        GATEWAY_SERVER="hypercorn",
        LOCALSTACK_HOST=host,
        # The machine looks like a container to LocalStack; it is not one, and its files
        # belong under the state folder rather than /var/lib/localstack.
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(state_dir / "filesystem"),
        # Queue URLs on 127.0.0.1 (host/account/queue, a form Terraform accepts), not on a
        # localstack.cloud name this machine cannot resolve.
        SQS_ENDPOINT_STRATEGY="off",
        SKIP_SSL_CERT_DOWNLOAD="1",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SERVICES="s3,sqs,firehose,events,iam,sts,logs,cloudwatch",
    )
    return ServerProcess(
        "localstack",
        [python, "-m", "localstack.runtime.main"],
        str(get_service_endpoint("sqs", localstack_host=host)),
        "/_localstack/health",
        log_dir / "localstack.log",
        env=env,
        cwd=state_dir,
        cleanup=state_dir,
        start_timeout=120.0,
    )
