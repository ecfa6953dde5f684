"""Apply ``infra/`` to a local emulator: the same configuration that deploys to AWS.

The provider comes from ``TF_PLUGIN_DIR`` when it is set (an offline mirror), and from the
registry otherwise. State and Terraform's working data live in the run's own folder,
so runs never share state with each other or with a real deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent.parent / "infra"


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries its output."""


class Terraform:
    """Runs terraform on ``infra/`` with its own data folder and state file."""

    def __init__(self, work_dir: Path, plugin_dir: str | None = None) -> None:
        if shutil.which("terraform") is None:
            raise TerraformError(
                "terraform is not on PATH (https://developer.hashicorp.com/terraform/install)"
            )
        self.work_dir = work_dir
        self.state = work_dir / "terraform.tfstate"
        self.plugin_dir = (
            plugin_dir if plugin_dir is not None else os.environ.get("TF_PLUGIN_DIR") or None
        )
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

    def init(self) -> None:
        """Install the provider (from the plugin folder when one is set)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        extra = [f"-plugin-dir={self.plugin_dir}"] if self.plugin_dir else []
        self._run("init", "-input=false", "-no-color", *extra)

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
