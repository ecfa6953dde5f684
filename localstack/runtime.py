"""Lambda's python3.12 runtime, reproduced on this machine: the interpreter plus boto3.

Lambda's runtime provides boto3 (and botocore) beside the function's package; the zips
leave them out. Here the runtime's interpreter is found (``FANOUT_LAMBDA_PYTHON``, then
pyenv's 3.12, then ``python3.12`` on PATH) and boto3 is installed once into a folder
that is put on the functions' path, as the runtime's own copy is.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from localstack.runner import Runtime

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_VERSION = "3.12"


def find_python() -> str:
    """The interpreter of Lambda's python3.12 runtime.

    Raises:
        FileNotFoundError: Naming how to provide one.
    """
    configured = os.environ.get("FANOUT_LAMBDA_PYTHON")
    if configured:
        if not shutil.which(configured):
            raise FileNotFoundError(f"FANOUT_LAMBDA_PYTHON={configured} is not an executable")
        return configured
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(
        glob.glob(f"{pyenv_root}/versions/{RUNTIME_VERSION}.*/bin/python{RUNTIME_VERSION}")
    )
    if candidates:
        return candidates[-1]
    on_path = shutil.which(f"python{RUNTIME_VERSION}")
    if on_path:
        return on_path
    raise FileNotFoundError(
        f"Lambda's runtime is python{RUNTIME_VERSION} and none was found: install it "
        f"(`pyenv install {RUNTIME_VERSION}`) or set FANOUT_LAMBDA_PYTHON to its interpreter"
    )


def _boto3_pin() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(next(d for d in project["dependencies"] if d.startswith("boto3==")))


def lambda_runtime(cache_dir: Path) -> Runtime:
    """The runtime's interpreter and its provided libraries, installed on first use."""
    python = find_python()
    pin = _boto3_pin()
    target = cache_dir / f"python{RUNTIME_VERSION}-{pin.replace('==', '-')}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(  # noqa: S603
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(target),
                pin,
            ],
            check=True,
        )
        (target / ".complete").touch()
    return Runtime(python=python, provided_paths=(str(target),))
