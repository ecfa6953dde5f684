"""The Lambda packages as ``make package`` builds them, unzipped and run under Python 3.12.

Each package is built here from scratch (pip resolving manylinux wheels into a fresh
folder), unpacked, and its handler imported under Lambda's runtime version with nothing
beside it but boto3, as Lambda's python3.12 runtime provides. The trimmed writer converts
a real raw object from moto's S3 into parquet, which is read back here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from infra import package
from localstack.runner import Runtime
from localstack.runtime import lambda_runtime
from localstack.stack import EMULATOR_CREDENTIALS
from tests.integration.conftest import REGION, list_keys, read

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = tuple(package.FUNCTIONS)
FIRST_PARTY = package.FIRST_PARTY

# Run inside the unpacked package: import the handler, report every module loaded.
IMPORT_HANDLER = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
with open(sys.argv[2], "w") as report:
    json.dump(sorted(sys.modules), report)
"""

# Run inside the unpacked writer: convert one raw object once per parquet codec.
CONVERT_RAW_OBJECT = """
import json, os, sys
from writer.handler import lambda_handler

class Context:
    aws_request_id = "package-test"
    def get_remaining_time_in_millis(self):
        return 60_000

event, report_path = json.loads(sys.argv[1]), sys.argv[2]
summaries = {}
for codec in ("zstd", "snappy", "gzip", "none"):
    os.environ["FANOUT_COMPRESSION"] = codec
    os.environ["FANOUT_PARQUET_PREFIX"] = f"parquet-{codec}/"
    summaries[codec] = lambda_handler(event, Context())
with open(report_path, "w") as report:
    json.dump({"summaries": summaries, "modules": sorted(sys.modules)}, report)
"""


def build_all(out: Path) -> Path:
    """Build every function's zip into ``out``, with its own dependency folder."""
    for function in FUNCTIONS:
        package.build(function, "x86_64", out, deps_cache=out / ".deps")
    package.write_sizes(out)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_all(tmp_path_factory.mktemp("lambda-first"))


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    try:
        return lambda_runtime(ROOT / "build" / "runtime")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def unpacked(built: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for function in FUNCTIONS:
        folder = tmp_path_factory.mktemp(f"{function}-code")
        with zipfile.ZipFile(built / f"{function}.zip") as archive:
            archive.extractall(folder)
        folders[function] = folder
    return folders


def names(built: Path, function: str) -> list[str]:
    with zipfile.ZipFile(built / f"{function}.zip") as archive:
        return archive.namelist()


def first_party_modules(entries: list[str]) -> set[str]:
    """Module names of the first-party ``.py`` files among zip entries."""
    return {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in entries
        if name.split("/")[0] in FIRST_PARTY and name.endswith(".py")
    }


def run_in_runtime(
    runtime: Runtime, code: Path, script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as Lambda would run the function: its code and boto3, nothing else."""
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(code), *runtime.provided_paths]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(code),
        **(env or {}),
    }
    completed = subprocess.run(
        [runtime.python, "-P", "-s", "-c", script, *args],
        env=environment,
        cwd=code,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


# Reproducible, and within the size goals


def test_builds_from_the_same_inputs_are_byte_identical(built: Path, tmp_path: Path) -> None:
    # given a second build from scratch: its own pip install, its own folder
    again = build_all(tmp_path / "lambda-second")

    # then every zip is the same, byte for byte
    for function in FUNCTIONS:
        first, second = built / f"{function}.zip", again / f"{function}.zip"
        assert first.read_bytes() == second.read_bytes(), function


def test_sizes_json_records_each_zip_as_lambda_counts_it(built: Path) -> None:
    recorded = json.loads((built / "sizes.json").read_text())

    for function in FUNCTIONS:
        with zipfile.ZipFile(built / f"{function}.zip") as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        assert recorded[function] == {
            "zipped_bytes": (built / f"{function}.zip").stat().st_size,
            "unzipped_bytes": unzipped,
        }


@pytest.mark.parametrize(
    ("function", "zipped_goal", "unzipped_goal"),
    [("producer", 5e6, None), ("consumer", 5e6, None), ("writer", 40e6, 150e6)],
    ids=["producer", "consumer", "writer"],
)
def test_package_meets_its_size_goal(
    built: Path, function: str, zipped_goal: float, unzipped_goal: float | None
) -> None:
    size = json.loads((built / "sizes.json").read_text())[function]

    assert size["zipped_bytes"] <= zipped_goal
    assert size["unzipped_bytes"] <= (unzipped_goal or package.UNZIPPED_LIMIT)


def test_arm64_writer_is_built_for_graviton_and_meets_its_size_goal(tmp_path: Path) -> None:
    # when the writer is built for arm64 (pip fetches aarch64 wheels; nothing is run)
    built = package.build("writer", "arm64", tmp_path, deps_cache=tmp_path / ".deps")
    size = package.package_size(built)

    # then every binary in it is an AArch64 ELF file, and the trimming held
    with zipfile.ZipFile(built) as archive:
        machines = {
            int.from_bytes(data[18:20], "little")
            for data in (archive.read(name) for name in archive.namelist() if ".so" in name)
        }
    assert machines == {183}  # EM_AARCH64
    assert size.zipped_bytes <= 40e6
    assert size.unzipped_bytes <= 150e6


# Only what each function loads


@pytest.mark.parametrize(
    ("function", "absent"),
    [
        ("producer", ("pyarrow/", "marshmallow/", "aiohttp/", "orjson/", "msgspec/")),
        ("consumer", ("pyarrow/", "numpy/")),
        ("writer", ("aiohttp/", "numpy/")),
    ],
    ids=["producer", "consumer", "writer"],
)
def test_package_leaves_out_the_dependencies_of_other_functions(
    built: Path, function: str, absent: tuple[str, ...]
) -> None:
    assert not [name for name in names(built, function) if name.startswith(absent)]


def test_writer_package_leaves_out_what_pyarrow_never_loads_for_it(built: Path) -> None:
    entries = names(built, "writer")
    pyarrow_files = {
        name.removeprefix("pyarrow/") for name in entries if name.startswith("pyarrow/")
    }

    assert not [
        n for n in pyarrow_files if n.startswith(("include/", "includes/", "src/", "tests/"))
    ]
    assert not [n for n in entries if n.endswith((".pyx", ".pxd", ".pxi", ".h", ".cc", ".pyi"))]
    shared = {n for n in pyarrow_files if "/" not in n and ".so" in n}
    assert shared == {
        "lib.cpython-312-x86_64-linux-gnu.so",
        "_compute.cpython-312-x86_64-linux-gnu.so",
        "_fs.cpython-312-x86_64-linux-gnu.so",
        "_json.cpython-312-x86_64-linux-gnu.so",
        "_parquet.cpython-312-x86_64-linux-gnu.so",
        # what those link to (DT_NEEDED), and nothing else: no Flight, S3, or second copies
        "libarrow.so.2600",
        "libarrow_acero.so.2600",
        "libarrow_compute.so.2600",
        "libarrow_dataset.so.2600",
        "libarrow_python.so.2600",
        "libarrow_substrait.so.2600",
        "libparquet.so.2600",
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_from_its_package_alone_under_lambdas_python(
    runtime: Runtime, unpacked: dict[str, Path], built: Path, function: str, tmp_path: Path
) -> None:
    # when the handler is imported from the unpacked zip, with only boto3 beside it
    report = tmp_path / "modules.json"
    run_in_runtime(runtime, unpacked[function], IMPORT_HANDLER, f"{function}.handler", str(report))
    loaded = set(json.loads(report.read_text()))

    # then it imports every first-party module its package holds, and no other
    assert first_party_modules(names(built, function)) == {
        m for m in loaded if m.split(".")[0] in FIRST_PARTY
    }
    assert ("pyarrow" in loaded) == (function == "writer")


def s3_put_event(golden: Callable[[str], dict[str, Any]], bucket: str, key: str) -> dict[str, Any]:
    event = golden("s3-put")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def reading(descriptor_id: str, when: str, values: list[int]) -> bytes:
    document = {
        "device_id": "dev-1",
        "datetime": when,
        "values": values,
        "descriptor_id": descriptor_id,
    }
    return json.dumps(document).encode() + b"\n"


def test_trimmed_writer_converts_a_raw_object_to_parquet_with_every_codec(
    runtime: Runtime,
    unpacked: dict[str, Path],
    emulator: str,
    resources: Any,
    client: Callable[[str], Any],
    golden: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    # given a raw object in moto's S3: readings of two dates and one corrupt line
    raw_key = "raw/2026/11/27/09/fanout-records-1-2026-11-27-09-00-00-package-test"
    body = (
        reading("d1", "2026-11-27T23:59:59.5", [1, 2**62, -(2**63)])
        + reading("d2", "2026-11-28T00:00:00", list(range(1000)))
        + b"{not json\n"
    )
    client("s3").put_object(Bucket=resources.bucket, Key=raw_key, Body=body)
    report = tmp_path / "convert.json"

    # when the writer, from its unpacked zip under Python 3.12, converts it with each codec
    run_in_runtime(
        runtime,
        unpacked["writer"],
        CONVERT_RAW_OBJECT,
        json.dumps(s3_put_event(golden, resources.bucket, raw_key)),
        str(report),
        env={
            **EMULATOR_CREDENTIALS,
            "AWS_ENDPOINT_URL": emulator,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "FANOUT_BUCKET": resources.bucket,
        },
    )
    outcome = json.loads(report.read_text())

    # then each codec wrote both dates' rows, and quarantined the corrupt line
    for codec, summary in outcome["summaries"].items():
        assert summary["rows"] == 2, codec
        assert summary["quarantined"] == 1, codec
        tables = [
            pq.read_table(io.BytesIO(read(client, resources.bucket, key)))
            for key in list_keys(client, resources.bucket, f"parquet-{codec}/")
        ]
        assert len(tables) == 2, codec
        rows = {row["descriptor_id"]: row for table in tables for row in table.to_pylist()}
        assert rows["d1"]["values"] == [1, 2**62, -(2**63)]
        assert rows["d2"]["values"] == list(range(1000))
        values_type = tables[0].schema.field("values").type
        assert (values_type.value_field.name, str(values_type.value_type)) == ("element", "int64")
        expected_codec = "UNCOMPRESSED" if codec == "none" else codec.upper()
        metadata = pq.read_metadata(
            io.BytesIO(
                read(
                    client,
                    resources.bucket,
                    list_keys(client, resources.bucket, f"parquet-{codec}/")[0],
                )
            )
        )
        assert metadata.row_group(0).column(0).compression == expected_codec
    assert list_keys(client, resources.bucket, "quarantine/writer/")
    # and it ran on the trimmed pyarrow: no dataset, Flight or S3 filesystem module loaded
    loaded = set(outcome["modules"])
    assert {"pyarrow.json", "pyarrow.compute", "pyarrow.parquet"} <= loaded
    assert not {"pyarrow.dataset", "pyarrow._flight", "pyarrow._s3fs"} & loaded
