"""Build one Lambda zip per function, without Docker, from any OS.

    python infra/package.py [--arch x86_64|arm64] [--out build/lambda] [function ...]

A zip holds only what its function loads:

* First-party modules are the import closure of the function's handler, computed from the
  source, so the producer ships neither ``fanout_core/contract.py`` nor marshmallow.
* Third-party code is what the function declares in :data:`FUNCTIONS`, resolved by pip for
  Lambda's python3.12 runtime on manylinux (binary wheels only, so no Linux build container
  is needed) at the versions pinned by ``pyproject.toml`` and, for what those pull in, by
  ``infra/lambda-constraints.txt``. The build fails if a function imports something that
  neither its packages nor Lambda's runtime (boto3, botocore) provide, declares something
  it never imports, or would ship a distribution that is not pinned.
* What nothing loads at run time is left out: sources, headers and type stubs of every
  dependency, and from pyarrow its tests, headers, the features the writer never uses
  (Flight, datasets, Acero, ORC, CSV, Feather, Substrait, CUDA, the cloud filesystems,
  encryption) and every bundled C++ library that no remaining extension module links to
  (read from the ELF ``DT_NEEDED`` entries, in Python, so any OS can do it).

Zips are reproducible: entries are sorted, timestamps fixed, permissions derived from the
content, so the same inputs give byte-identical zips and Terraform's
``source_code_hash`` changes only when code or dependencies do. (The compressed bytes
come from the interpreter's zlib: a different implementation, such as zlib-ng, may
compress the same entries differently, so build releases on one kind of machine.) The
sizes are printed against Lambda's limits and written to ``<out>/sizes.json``.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "infra" / "lambda-constraints.txt"
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): every manylinux tag up
# to 2_34 runs there. pip does not widen a --platform by itself, so each is named.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
PLATFORMS = {
    arch: [f"{tag}_{machine}" for tag in _MANYLINUX]
    for arch, machine in (("x86_64", "x86_64"), ("arm64", "aarch64"))
}

#: Lambda's limits for a function's code: a zip uploaded directly, and everything unzipped.
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024

#: Packages whose modules are ours: each function ships those its handler imports.
FIRST_PARTY = ("fanout_core", "producer", "consumer", "writer")
#: Top-level modules Lambda's python3.12 runtime puts beside every function.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})
#: The distributions behind those (boto3 and what it depends on). pip installs them when a
#: dependency requires one (aws-xray-sdk requires botocore); packages leave them out, so
#: the function uses the runtime's own copy, as it does for boto3.
RUNTIME_DISTRIBUTIONS = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)


@dataclass(frozen=True)
class Function:
    """One Lambda function: its handler module and the distributions it imports."""

    handler_module: str
    requires: tuple[str, ...] = ()


FUNCTIONS: dict[str, Function] = {
    "producer": Function("producer.handler", ("aws-xray-sdk",)),
    "consumer": Function(
        "consumer.handler", ("aiohttp", "aws-xray-sdk", "marshmallow", "msgspec", "orjson")
    ),
    "writer": Function(
        "writer.handler", ("aws-xray-sdk", "pyarrow", "marshmallow", "msgspec", "orjson")
    ),
}


@dataclass(frozen=True)
class Trim:
    """What a function never loads from one installed distribution.

    Attributes:
        drop: ``fnmatch`` patterns of paths (relative to the install folder) to leave out.
        linked_libraries: A folder whose bundled ``lib*.so*`` files are kept only when a
            kept ELF file there needs them (``DT_NEEDED``), directly or not.
    """

    drop: tuple[str, ...] = ()
    linked_libraries: str | None = None


#: Left out of every package: sources, headers, type stubs and import libraries.
NEVER_LOADED = ("*.pyx", "*.pxd", "*.pxi", "*.c", "*.cc", "*.cpp", "*.h", "*.hpp", "*.pyi", "*.lib")

#: pyarrow features the writer never loads (it uses pyarrow.json, .compute and .parquet,
#: which load lib, _compute, _json, _fs and _parquet): their modules go, and so does every
#: bundled library only they link to (libarrow_flight, libarrow_s3, ...). Code that starts
#: using one must take it off this list: ``pq.read_table`` and ``pq.ParquetDataset``, for
#: instance, need "dataset" (``pq.ParquetFile`` and ``pq.read_metadata`` do not).
PYARROW_UNUSED_FEATURES = (
    "acero",
    "azurefs",
    "csv",
    "cuda",
    "dataset",
    "feather",
    "flight",
    "gandiva",
    "gcsfs",
    "hdfs",
    "orc",
    "parquet_encryption",
    "pyarrow_cpp_tests",
    "s3fs",
    "substrait",
)

TRIMS: dict[str, Trim] = {
    "pyarrow": Trim(
        drop=(
            "pyarrow/include/*",
            "pyarrow/includes/*",
            "pyarrow/src/*",
            "pyarrow/tests/*",
            "pyarrow/interchange/*",
            "pyarrow/benchmark.py",
            "pyarrow/conftest.py",
            "pyarrow/jvm.py",
            "pyarrow/parquet/encryption.py",
            *(
                pattern
                for feature in PYARROW_UNUSED_FEATURES
                for pattern in (f"pyarrow/{feature}.py", f"pyarrow/_{feature}.*")
            ),
            # pyarrow.dataset's variants: _dataset_orc, _dataset_parquet(_encryption).
            "pyarrow/_dataset_*",
        ),
        linked_libraries="pyarrow",
    ),
}

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


class PackagingError(RuntimeError):
    """A package cannot be built as declared; the message says what to change."""


# Pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[", maxsplit=1)[0]).lower()


def _read_pins(lines: Iterable[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            pins[_normalise(name)] = version.strip()
    return pins


def dependency_pins() -> dict[str, str]:
    """Normalised name -> version, from ``[project].dependencies`` in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _read_pins(project["dependencies"])


def constraint_pins() -> dict[str, str]:
    """Normalised name -> version, from infra/lambda-constraints.txt."""
    return _read_pins(CONSTRAINTS.read_text().splitlines())


def pinned_requirements(names: Iterable[str]) -> list[str]:
    """``name==version`` for each name, from ``[project].dependencies`` in pyproject.toml."""
    pins = dependency_pins()
    missing = [name for name in names if _normalise(name) not in pins]
    if missing:
        raise PackagingError(f"not pinned in pyproject.toml [project].dependencies: {missing}")
    return [f"{_normalise(name)}=={pins[_normalise(name)]}" for name in names]


# First-party modules: the import closure of a handler


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(path: Path, module: str) -> Iterator[str]:
    """Every module name ``path`` imports at run time (``if TYPE_CHECKING:`` blocks aside).

    ``from package import name`` yields both ``package`` and ``package.name``: the second
    is a module or an attribute, which only the file system can tell.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    pending: list[ast.AST] = [ast.parse(path.read_bytes(), filename=str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
        pending.extend(ast.iter_child_nodes(node))


@dataclass(frozen=True)
class ImportClosure:
    """What a module imports, directly or not.

    Attributes:
        modules: First-party module name -> its file, the module's packages included.
        third_party: Top-level names of the other imports outside the standard library.
    """

    modules: dict[str, Path]
    third_party: frozenset[str]


def import_closure(
    module: str, root: Path = ROOT, first_party: Sequence[str] = FIRST_PARTY
) -> ImportClosure:
    """The first-party modules ``module`` imports, directly or not, and its other imports.

    Raises:
        PackagingError: If ``module`` itself is not found under ``root``.
    """
    if _module_file(module, root) is None:
        raise PackagingError(f"{module} is not a module under {root}")
    modules: dict[str, Path] = {}
    third_party: set[str] = set()
    pending, seen = [module], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name, root)
        if path is None:  # an attribute imported with ``from package import name``
            continue
        modules[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
        for imported in _imported_names(path, name):
            top = imported.partition(".")[0]
            if top in first_party:
                pending.append(imported)
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                third_party.add(top)
    return ImportClosure(dict(sorted(modules.items())), frozenset(third_party))


def first_party_entries(closure: ImportClosure, root: Path = ROOT) -> dict[str, Path]:
    """Zip entry name -> file, for the first-party modules of ``closure``."""
    return {path.relative_to(root).as_posix(): path for path in closure.modules.values()}


# Shared libraries


def elf_needed(data: bytes) -> list[str]:
    """The ``DT_NEEDED`` entries of an ELF file; ``[]`` for anything else.

    Raises:
        PackagingError: If ``data`` is ELF but not the 64-bit little-endian kind that both
            of Lambda's architectures (x86_64, arm64) use, or has no section table.
    """
    if data[:4] != b"\x7fELF":
        return []
    if data[4:6] != b"\x02\x01":
        raise PackagingError("only 64-bit little-endian ELF files are expected")
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    if not count:
        raise PackagingError("an ELF file without a section table")
    # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize.
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_offset + index * entry_size)
        for index in range(count)
    ]
    needed = []
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != 6:  # SHT_DYNAMIC
            continue
        strings = sections[link][4]
        for entry in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, entry)
            if tag == 0:  # DT_NULL
                break
            if tag == 1:  # DT_NEEDED
                start = strings + value
                needed.append(data[start : data.index(b"\0", start)].decode())
    return needed


_LIBRARY = re.compile(r"lib[^./]+\.so(\.[0-9]+)*")


def _is_bundled_library(name: str, folder: str) -> bool:
    # libarrow.so.2600, not the extension module lib.cpython-312-x86_64-linux-gnu.so.
    parent, _, base = name.rpartition("/")
    return parent == folder and _LIBRARY.fullmatch(base) is not None


def drop_unlinked_libraries(entries: Mapping[str, Path], folder: str) -> dict[str, Path]:
    """``entries`` without the ``lib*.so*`` files in ``folder`` that nothing kept links to."""
    libraries = {name for name in entries if _is_bundled_library(name, folder)}
    needed: set[str] = set()
    pending = [name for name in entries if name not in libraries and ".so" in name]
    while pending:
        name = pending.pop()
        for library in elf_needed(entries[name].read_bytes()):
            candidate = f"{folder}/{library}"
            if candidate in libraries and candidate not in needed:
                needed.add(candidate)
                pending.append(candidate)
    return {name: path for name, path in entries.items() if name not in libraries - needed}


# Dependencies


def install_dependencies(requirements: list[str], arch: str, cache: Path) -> Path | None:
    """Install ``requirements`` for the Lambda runtime into a cached folder; return it."""
    if not requirements:
        return None
    key = [requirements, CONSTRAINTS.read_text(), arch, PYTHON_VERSION]
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
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
        "--constraint",
        str(CONSTRAINTS),
        *requirements,
    ]
    subprocess.run(command, check=True)  # noqa: S603
    drop_runtime_distributions(target)
    (target / ".complete").touch()
    return target


def drop_runtime_distributions(folder: Path) -> None:
    """Remove what Lambda's runtime provides (:data:`RUNTIME_DISTRIBUTIONS`) from ``folder``."""
    for name, (_, info) in _distributions(folder).items():
        if name not in RUNTIME_DISTRIBUTIONS:
            continue
        for row in (info / "RECORD").read_text().splitlines():
            relative = row.split(",", 1)[0]
            path = folder / relative
            if relative and ".." not in Path(relative).parts and path.is_file():
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
    for directory in sorted(folder.rglob("*"), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _distributions(folder: Path) -> dict[str, tuple[str, Path]]:
    """Normalised name -> (version, dist-info folder) of what pip installed in ``folder``."""
    found = {}
    for info in folder.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[_normalise(name)] = (version, info)
    return found


def _top_level_names(dist_info: Path) -> set[str]:
    """Top-level modules a distribution installed, from its RECORD."""
    names = set()
    for row in (dist_info / "RECORD").read_text().splitlines():
        first = row.split(",", 1)[0].split("/", 1)[0]
        if first and first != ".." and not first.endswith(".dist-info"):
            names.add(first.split(".", 1)[0])
    return names


def check_dependencies(
    function: str, closure: ImportClosure, requires: Sequence[str], deps: Path | None
) -> None:
    """Fail unless the installed dependencies are exactly what the function needs, pinned.

    Raises:
        PackagingError: Naming the import that nothing provides, the declared distribution
            nothing imports, or the installed distribution that nothing pins.
    """
    installed = _distributions(deps) if deps else {}
    provided = set(RUNTIME_PROVIDED)
    for _, info in installed.values():
        provided |= _top_level_names(info)
    missing = sorted(closure.third_party - provided)
    if missing:
        raise PackagingError(
            f"{function} imports {missing}, which neither its requires in infra/package.py "
            "nor Lambda's runtime provide"
        )
    for requirement in requires:
        _, info = installed[_normalise(requirement)]
        if not _top_level_names(info) & closure.third_party:
            raise PackagingError(f"{function} requires {requirement} but never imports it")
    pins = {**constraint_pins(), **dependency_pins()}
    for name, (version, _) in sorted(installed.items()):
        if pins.get(name) != version:
            raise PackagingError(
                f"{function} would ship {name} {version}, which is not pinned: add "
                f"{name}=={version} to {CONSTRAINTS.relative_to(ROOT)}"
            )


def _files(folder: Path) -> Iterable[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or _SKIP_DIRS & set(relative.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES or relative.parts[0] in (".complete", "bin"):
            continue
        yield relative.as_posix(), path


def dependency_entries(deps: Path) -> dict[str, Path]:
    """Zip entry name -> file for the installed dependencies, less what is never loaded."""
    entries = {
        name: path
        for name, path in _files(deps)
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in NEVER_LOADED)
    }
    for distribution, trim in TRIMS.items():
        if distribution not in _distributions(deps):
            continue
        entries = {
            name: path
            for name, path in entries.items()
            if not any(fnmatch.fnmatchcase(name, pattern) for pattern in trim.drop)
        }
        if trim.linked_libraries:
            entries = drop_unlinked_libraries(entries, trim.linked_libraries)
    return entries


# Zips


def write_zip(destination: Path, entries: Iterable[tuple[str, Path]]) -> None:
    """Write a zip whose bytes depend only on the entries' names and contents."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in sorted(entries):
            data = path.read_bytes()
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            # From the content, not the file system, which differs between OSes: binaries
            # executable, everything else read-only; all readable by Lambda's user.
            info.external_attr = (0o755 if data[:4] == b"\x7fELF" else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, data, compresslevel=9)
    partial.replace(destination)


def entries_for(function: str, arch: str, deps_cache: Path) -> dict[str, Path]:
    """Zip entry name -> file: everything ``function``'s package holds."""
    spec = FUNCTIONS[function]
    closure = import_closure(spec.handler_module)
    deps = install_dependencies(pinned_requirements(spec.requires), arch, deps_cache)
    check_dependencies(function, closure, spec.requires, deps)
    entries = dependency_entries(deps) if deps else {}
    entries.update(first_party_entries(closure))
    return entries


def build(function: str, arch: str, out: Path, deps_cache: Path | None = None) -> Path:
    """Build ``out/<function>.zip`` and return its path."""
    entries = entries_for(function, arch, deps_cache or out / ".deps")
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


# Sizes


@dataclass(frozen=True)
class Size:
    """A package's size as Lambda counts it."""

    zipped_bytes: int
    unzipped_bytes: int

    @property
    def within_limits(self) -> bool:
        return self.zipped_bytes <= ZIPPED_LIMIT and self.unzipped_bytes <= UNZIPPED_LIMIT


def package_size(package: Path) -> Size:
    """The zip's size and the size of what it unpacks to."""
    with zipfile.ZipFile(package) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return Size(package.stat().st_size, unzipped)


def size_table(sizes: Mapping[str, Size]) -> str:
    """The sizes against Lambda's limits, one function a row."""

    def megabytes(count: int) -> str:
        return f"{count / 1e6:8.2f} MB"

    rows = [
        f"{'function':<9} {'zipped':>11} {'of limit':>8} {'unzipped':>11} {'of limit':>8}",
    ]
    for function, size in sizes.items():
        rows.append(
            f"{function:<9} {megabytes(size.zipped_bytes)} "
            f"{size.zipped_bytes / ZIPPED_LIMIT:8.0%} "
            f"{megabytes(size.unzipped_bytes)} {size.unzipped_bytes / UNZIPPED_LIMIT:8.0%}"
        )
    rows.append(
        f"Lambda's limits: {megabytes(ZIPPED_LIMIT).strip()} zipped (50 MiB, direct upload), "
        f"{megabytes(UNZIPPED_LIMIT).strip()} unzipped (250 MiB)"
    )
    return "\n".join(rows)


def write_sizes(out: Path) -> dict[str, Size]:
    """Measure every function's zip in ``out``; write ``out/sizes.json``; return them."""
    sizes = {
        function: package_size(out / f"{function}.zip")
        for function in FUNCTIONS
        if (out / f"{function}.zip").exists()
    }
    (out / "sizes.json").write_text(
        json.dumps(
            {
                function: {
                    "zipped_bytes": size.zipped_bytes,
                    "unzipped_bytes": size.unzipped_bytes,
                }
                for function, size in sizes.items()
            },
            indent=2,
        )
        + "\n"
    )
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "functions", nargs="*", metavar="function", help=f"of {', '.join(FUNCTIONS)}"
    )
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    args = parser.parse_args(argv)
    unknown = set(args.functions) - FUNCTIONS.keys()
    if unknown:
        parser.error(f"unknown functions {sorted(unknown)}; choose from {', '.join(FUNCTIONS)}")
    try:
        for function in args.functions or FUNCTIONS:
            build(function, args.arch, args.out)
    except PackagingError as exc:
        print(f"package.py: {exc}", file=sys.stderr)
        return 1
    sizes = write_sizes(args.out)
    print(size_table(sizes))
    print(f"({args.arch}; sizes in {args.out / 'sizes.json'})")
    over = [function for function, size in sizes.items() if not size.within_limits]
    if over:
        print(f"package.py: over Lambda's limits: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
