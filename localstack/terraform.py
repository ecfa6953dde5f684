"""Terraform on ``infra/``: checks, and applies to a local emulator.

    python -m localstack.terraform check     # fmt -check, init, validate

The provider comes from an offline mirror when there is one: ``TF_PLUGIN_DIR`` names it
(set it empty to use the registry); unset, a folder holding ``registry.terraform.io``
within four levels of ``/`` is used. State and Terraform's working data live in the run's
own folder, so runs never share state with each other or with a real deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
_SKIP = {"proc", "sys", "dev", "run", "tmp"}


def plugin_dir() -> str | None:
    """The provider mirror to install from, or ``None`` for the registry."""
    if "TF_PLUGIN_DIR" in os.environ:
        return os.environ["TF_PLUGIN_DIR"] or None
    frontier = [Path("/")]
    for _ in range(4):
        deeper = []
        for folder in frontier:
            try:
                children = [c for c in folder.iterdir() if c.is_dir() and c.name not in _SKIP]
            except OSError:
                continue
            for child in children:
                if child.name == "registry.terraform.io":
                    return str(folder)
            deeper.extend(children)
        frontier = deeper
    return None


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries its output."""


class Terraform:
    """Runs terraform on ``infra/`` with its own data folder and state file."""

    def __init__(self, work_dir: Path, plugins: str | None = None) -> None:
        if shutil.which("terraform") is None:
            raise TerraformError(
                "terraform is not on PATH (https://developer.hashicorp.com/terraform/install)"
            )
        self.work_dir = work_dir
        self.state = work_dir / "terraform.tfstate"
        self.plugin_dir = plugins if plugins is not None else plugin_dir()
        self.env = {
            **os.environ,
            "TF_DATA_DIR": str(work_dir / ".terraform"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    def _run(self, *args: str, timeout: float = 600) -> str:
        command = ["terraform", f"-chdir={INFRA}", *args]
        done = subprocess.run(  # noqa: S603
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode:
            raise TerraformError(
                f"{' '.join(args[:1])} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def init(self, *extra: str) -> None:
        """Install the provider (from the mirror when there is one)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        plugins = [f"-plugin-dir={self.plugin_dir}"] if self.plugin_dir else []
        self._run("init", "-input=false", "-no-color", *plugins, *extra)

    def check(self) -> None:
        """``fmt -check`` and ``validate``, as CI runs them."""
        self._run("fmt", "-check", "-recursive", "-no-color")
        self.init("-backend=false")
        self._run("validate", "-no-color")

    def apply(
        self, variables: Mapping[str, Any], var_files: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Apply with ``variables``; return the outputs as plain values."""
        args = ["apply", "-auto-approve", "-input=false", "-no-color", f"-state={self.state}"]
        args += [f"-var-file={name}" for name in var_files]
        for name, value in variables.items():
            rendered = value if isinstance(value, str) else json.dumps(value)
            args.append(f"-var={name}={rendered}")
        self._run(*args)
        return self.outputs()

    def outputs(self) -> dict[str, Any]:
        """``terraform output`` as a dict of values."""
        raw = json.loads(self._run("output", "-json", f"-state={self.state}"))
        return {name: entry["value"] for name, entry in raw.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Terraform checks on infra/")
    parser.add_argument("command", choices=["check"])
    parser.parse_args(argv)
    try:
        Terraform(ROOT / "build" / "tf-check").check()
    except TerraformError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("terraform: infra/ is formatted and valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
