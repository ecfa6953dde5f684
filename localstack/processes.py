"""Background servers the local stack starts and always stops: the emulator and the sample API.

Each runs in its own process, on 127.0.0.1 only, with its output in a log file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from localstack.sample_api import ApiConfig, free_port


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1, stopped (with its children) on exit."""

    def __init__(
        self, name: str, command: list[str], url: str, ready_path: str, log_path: Path
    ) -> None:
        self.name = name
        self.command = command
        self.url = url
        self.ready_path = ready_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

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
