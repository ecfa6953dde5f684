"""infra/package.py's pieces: import closures, ELF links, trimming, zips, sizes, pins."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pyarrow
import pytest

from infra import package

PYARROW = Path(pyarrow.__file__).parent


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# Import closures


@pytest.mark.parametrize(
    ("function", "shipped", "left_out"),
    [
        (
            "producer",
            {"fanout_core.descriptor", "fanout_core.settings", "producer.produce"},
            {"fanout_core.contract", "fanout_core.arrow", "fanout_core.quarantine"},
        ),
        (
            "consumer",
            {"fanout_core.contract", "fanout_core.quarantine", "consumer.fetch"},
            {"fanout_core.arrow"},
        ),
        ("writer", {"fanout_core.arrow", "fanout_core.contract", "writer.convert"}, set()),
    ],
    ids=["producer", "consumer", "writer"],
)
def test_import_closure_ships_what_the_handler_imports_and_nothing_else(
    function: str, shipped: set[str], left_out: set[str]
) -> None:
    closure = package.import_closure(f"{function}.handler")

    assert shipped <= set(closure.modules)
    assert not left_out & set(closure.modules)
    assert {f"{function}", "fanout_core"} <= set(closure.modules)  # packages' __init__.py
    assert not {m for m in closure.modules if m.split(".")[0] not in (function, "fanout_core")}


@pytest.mark.parametrize(
    ("function", "third_party"),
    [
        ("producer", {"aws_xray_sdk", "boto3", "botocore"}),
        (
            "consumer",
            {
                "aiohttp",
                "yarl",
                "marshmallow",
                "msgspec",
                "orjson",
                "aws_xray_sdk",
                "boto3",
                "botocore",
            },
        ),
        (
            "writer",
            {"pyarrow", "marshmallow", "msgspec", "orjson", "aws_xray_sdk", "boto3", "botocore"},
        ),
    ],
    ids=["producer", "consumer", "writer"],
)
def test_import_closure_names_the_third_party_imports(function: str, third_party: set[str]) -> None:
    closure = package.import_closure(f"{function}.handler")

    assert closure.third_party == third_party


def test_import_closure_follows_relative_imports_and_skips_type_checking_blocks(
    tmp_path: Path,
) -> None:
    # given a package whose handler imports a sibling relatively, a module through
    # "from package import name", and another only for type checking
    write(tmp_path / "app" / "__init__.py")
    write(
        tmp_path / "app" / "handler.py",
        "from typing import TYPE_CHECKING\n"
        "from . import helpers\n"
        "from app.sub import thing\n"
        "if TYPE_CHECKING:\n"
        "    from app import typing_only\n"
        "else:\n"
        "    import json\n"
        "def f():\n"
        "    import requests\n",
    )
    write(tmp_path / "app" / "helpers.py", "import os.path\nfrom ..app import sub\n")
    write(tmp_path / "app" / "sub" / "__init__.py", "thing = 1\n")
    write(tmp_path / "app" / "typing_only.py", "import numpy\n")

    # when
    closure = package.import_closure("app.handler", tmp_path, first_party=("app",))

    # then
    assert set(closure.modules) == {"app", "app.handler", "app.helpers", "app.sub"}
    assert closure.third_party == {"requests"}


def test_import_closure_refuses_a_missing_handler(tmp_path: Path) -> None:
    with pytest.raises(package.PackagingError, match="not a module"):
        package.import_closure("nowhere.handler", tmp_path)


# Shared libraries


def test_elf_needed_reads_the_libraries_an_extension_module_links_to() -> None:
    [extension] = PYARROW.glob("lib.cpython-*.so")

    needed = package.elf_needed(extension.read_bytes())

    assert {"libarrow.so.2600", "libarrow_python.so.2600", "libparquet.so.2600"} <= set(needed)
    assert "libarrow_flight.so.2600" not in needed


def test_elf_needed_of_a_file_that_is_not_elf_is_empty() -> None:
    assert package.elf_needed(b"#!/bin/sh\n") == []


def test_drop_unlinked_libraries_keeps_exactly_what_the_kept_modules_link_to() -> None:
    # given pyarrow's own folder, with the Flight and S3 extension modules left out
    entries = {
        f"pyarrow/{path.name}": path
        for path in PYARROW.iterdir()
        if ".so" in path.name and not path.name.startswith(("_flight", "_s3fs"))
    }

    # when
    kept = set(package.drop_unlinked_libraries(entries, "pyarrow"))

    # then the libraries only Flight and S3 need are gone, every extension module stays
    assert {"pyarrow/libarrow.so.2600", "pyarrow/libparquet.so.2600"} <= kept
    assert "pyarrow/libarrow_python.so.2600" in kept
    assert (
        not {
            "pyarrow/libarrow_flight.so.2600",
            "pyarrow/libarrow_s3.so.2600",
            "pyarrow/libarrow_python.so",  # a link-time name nothing loads
            "pyarrow/libarrow_python.so.2600.1.0",
        }
        & kept
    )
    assert {name for name in entries if ".cpython-" in name} <= kept


# Zips


def test_write_zip_depends_only_on_names_and_contents(tmp_path: Path) -> None:
    # given the same files twice, with different times and modes
    source = write(tmp_path / "src" / "a.py", "print('a')\n")
    binary = tmp_path / "src" / "lib.so"
    binary.write_bytes(b"\x7fELF" + bytes(60))
    package.write_zip(tmp_path / "first.zip", [("a.py", source), ("lib.so", binary)])
    os.utime(source, (0, 1_000_000))
    source.chmod(0o600)
    binary.chmod(0o600)

    # when
    package.write_zip(tmp_path / "second.zip", [("lib.so", binary), ("a.py", source)])

    # then
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "second.zip") as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        times = {info.date_time for info in archive.infolist()}
    assert modes == {"a.py": 0o644, "lib.so": 0o755}
    assert times == {(1980, 1, 1, 0, 0, 0)}


def test_dependency_entries_leave_out_sources_headers_and_stubs(tmp_path: Path) -> None:
    for name in ("pkg/__init__.py", "pkg/_speed.pyx", "pkg/api.h", "pkg/__init__.pyi"):
        write(tmp_path / name)
    write(tmp_path / "pkg-1.0.dist-info" / "RECORD", "pkg/__init__.py,,\n")

    entries = package.dependency_entries(tmp_path)

    assert set(entries) == {"pkg/__init__.py", "pkg-1.0.dist-info/RECORD"}


# Dependencies


def installed(folder: Path, distribution: str, version: str, top_level: str) -> None:
    write(folder / top_level / "__init__.py")
    write(
        folder / f"{distribution}-{version}.dist-info" / "RECORD",
        f"{top_level}/__init__.py,sha256=x,1\n{distribution}-{version}.dist-info/RECORD,,\n",
    )


def test_runtime_distributions_are_dropped_from_an_install_and_the_rest_kept(
    tmp_path: Path,
) -> None:
    # given what pip installs for aws-xray-sdk: it, wrapt, and botocore with its own needs
    installed(tmp_path, "aws_xray_sdk", "2.15.0", "aws_xray_sdk")
    installed(tmp_path, "wrapt", "2.5.2", "wrapt")
    installed(tmp_path, "botocore", "1.44.8", "botocore")
    installed(tmp_path, "python_dateutil", "2.9.0", "dateutil")

    package.drop_runtime_distributions(tmp_path)

    # then what Lambda's runtime provides is gone, files and metadata alike
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aws_xray_sdk",
        "aws_xray_sdk-2.15.0.dist-info",
        "wrapt",
        "wrapt-2.5.2.dist-info",
    ]


def test_check_dependencies_refuses_an_import_nothing_provides(tmp_path: Path) -> None:
    installed(tmp_path, "orjson", "3.13.0", "orjson")
    closure = package.ImportClosure({}, frozenset({"orjson", "requests", "boto3"}))

    with pytest.raises(package.PackagingError, match=r"imports \['requests'\]"):
        package.check_dependencies("f", closure, ["orjson"], tmp_path)


def test_check_dependencies_refuses_a_requirement_nothing_imports(tmp_path: Path) -> None:
    installed(tmp_path, "orjson", "3.13.0", "orjson")
    closure = package.ImportClosure({}, frozenset({"boto3"}))

    with pytest.raises(package.PackagingError, match="requires orjson but never imports it"):
        package.check_dependencies("f", closure, ["orjson"], tmp_path)


def test_check_dependencies_refuses_an_unpinned_distribution(tmp_path: Path) -> None:
    installed(tmp_path, "orjson", "3.13.0", "orjson")
    installed(tmp_path, "surprise", "0.1", "surprise")
    closure = package.ImportClosure({}, frozenset({"orjson"}))

    with pytest.raises(package.PackagingError, match=r"surprise 0\.1, which is not pinned"):
        package.check_dependencies("f", closure, ["orjson"], tmp_path)


def test_every_constraint_is_a_version_pin() -> None:
    lines = [
        line
        for line in package.CONSTRAINTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert lines
    assert all(len(line.split("==")) == 2 for line in lines)
    assert len(package.constraint_pins()) == len(lines)


# Sizes


def test_write_sizes_records_zipped_and_unzipped_bytes(tmp_path: Path) -> None:
    payload = write(tmp_path / "src" / "big.txt", "x" * 100_000)
    package.write_zip(tmp_path / "producer.zip", [("big.txt", payload)])

    sizes = package.write_sizes(tmp_path)

    recorded = json.loads((tmp_path / "sizes.json").read_text())
    assert recorded == {
        "producer": {
            "zipped_bytes": (tmp_path / "producer.zip").stat().st_size,
            "unzipped_bytes": 100_000,
        }
    }
    assert sizes["producer"].within_limits
    assert "producer" in package.size_table(sizes)


def test_a_package_over_lambdas_unzipped_limit_is_not_within_limits() -> None:
    assert not package.Size(1_000, package.UNZIPPED_LIMIT + 1).within_limits
    assert not package.Size(package.ZIPPED_LIMIT + 1, 1_000).within_limits
