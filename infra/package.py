"""Build one Lambda zip per function, without Docker, from any OS.

    python infra/package.py [--arch x86_64|arm64] [--out build/lambda] [function ...]

Dependencies are resolved by pip for Lambda's python3.12 runtime on manylinux (binary
wheels only), so no Linux build container is needed. boto3 is left out: the runtime
provides it. Zips are reproducible (sorted entries, fixed timestamps and permissions), so
Terraform's ``source_code_hash`` changes only when code or dependencies do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): every manylinux tag up
# to 2_34 runs there. pip does not widen a --platform by itself, so each is named.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
PLATFORMS = {
    arch: [f"{tag}_{machine}" for tag in _MANYLINUX]
    for arch, machine in (("x86_64", "x86_64"), ("arm64", "aarch64"))
}

#: What each function imports, by distribution name; versions come from pyproject.toml.
FUNCTIONS: dict[str, dict[str, Sequence[str]]] = {
    "producer": {"packages": ("producer", "fanout_core"), "requires": ()},
    "consumer": {
        "packages": ("consumer", "fanout_core"),
        "requires": ("aiohttp", "marshmallow", "orjson"),
    },
    "writer": {
        "packages": ("writer", "fanout_core"),
        "requires": ("pyarrow", "marshmallow", "orjson"),
    },
}

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def pinned_requirements(names: Iterable[str]) -> list[str]:
    """``name==version`` for each name, from ``[project].dependencies`` in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        pins[_normalise(name)] = f"{name}=={version}"
    missing = [n for n in names if _normalise(n) not in pins]
    if missing:
        raise SystemExit(f"not pinned in pyproject.toml [project].dependencies: {missing}")
    return [pins[_normalise(n)] for n in names]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[", maxsplit=1)[0]).lower()


def install_dependencies(requirements: list[str], arch: str, cache: Path) -> Path | None:
    """Install ``requirements`` for the Lambda runtime into a cached folder; return it."""
    if not requirements:
        return None
    digest = hashlib.sha256(json.dumps([requirements, arch, PYTHON_VERSION]).encode()).hexdigest()
    target = cache / f"{arch}-{digest[:16]}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *(f"--platform={platform}" for platform in PLATFORMS[arch]),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        *requirements,
    ]
    subprocess.run(command, check=True)  # noqa: S603
    (target / ".complete").touch()
    return target


def _files(folder: Path) -> Iterable[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or _SKIP_DIRS & set(relative.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES or relative.parts[0] in (".complete", "bin"):
            continue
        yield relative.as_posix(), path


def write_zip(destination: Path, entries: Iterable[tuple[str, Path]]) -> None:
    """Write a zip whose bytes depend only on the entries' names and contents."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(destination)


def build(function: str, arch: str, out: Path) -> Path:
    """Build ``out/<function>.zip`` and return its path."""
    spec = FUNCTIONS[function]
    entries: dict[str, Path] = {}
    deps = install_dependencies(pinned_requirements(spec["requires"]), arch, out / ".deps")
    if deps:
        entries.update(_files(deps))
    for package in spec["packages"]:
        for name, path in _files(ROOT / package):
            if name.endswith(".py"):
                entries[f"{package}/{name}"] = path
    destination = out / f"{function}.zip"
    # Inputs unchanged since the last build: the zip would come out byte-identical.
    digest = hashlib.sha256()
    for name, path in sorted(entries.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    stamp = out / f".{function}.inputs"
    if destination.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return destination
    write_zip(destination, entries.items())
    stamp.write_text(digest.hexdigest())
    return destination


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "functions", nargs="*", metavar="function", help=f"of {', '.join(FUNCTIONS)}"
    )
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    args = parser.parse_args(argv)
    unknown = set(args.functions) - FUNCTIONS.keys()
    if unknown:
        parser.error(f"unknown functions {sorted(unknown)}; choose from {', '.join(FUNCTIONS)}")
    for function in args.functions or FUNCTIONS:
        path = build(function, args.arch, args.out)
        print(f"{function:<9} {path.stat().st_size / 1e6:7.2f} MB  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
