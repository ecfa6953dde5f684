"""The writer's memory bound: Firehose's largest object (128 MiB) converts in under 1 GiB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.writer import FIREHOSE_MAX_BYTES, make_input
from tests.integration.conftest import list_keys

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MIB = 1024

# Runs in a fresh interpreter so its peak resident memory is the conversion's alone.
CONVERT_AND_REPORT = """
import json, resource, sys
from fanout_core.settings import WriterSettings
from writer.convert import convert_object
result = convert_object(sys.argv[1], sys.argv[2], WriterSettings.from_env())
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": result.rows, "files": len(result.files), "peak_mib": peak_mib}))
"""


def test_a_128_mib_object_converts_under_1_gib_of_resident_memory(resources, client, tmp_path):
    # given the largest object Firehose delivers, documents of 1,000 values
    source = tmp_path / "raw.ndjson"
    rows = make_input(source, FIREHOSE_MAX_BYTES)
    key = "raw/2026/11/27/09/fanout-records-1-largest"
    client("s3").upload_file(str(source), resources.bucket, key)
    # when a separate process converts it with the default settings
    completed = subprocess.run(
        [sys.executable, "-c", CONVERT_AND_REPORT, resources.bucket, key],
        cwd=ROOT,
        env={**os.environ, "FANOUT_BUCKET": resources.bucket},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    # then every row landed, and the process never held 1 GiB
    assert report["rows"] == rows
    assert list_keys(client, resources.bucket, "parquet/") != []
    assert report["peak_mib"] < LIMIT_MIB, f"peak RSS {report['peak_mib']:.0f} MiB"
