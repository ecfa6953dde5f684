"""``fanout plan``'s arithmetic against figures worked out by hand from the data file."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from fanout_cli import plan
from fanout_cli.__main__ import main
from fanout_cli.target import CliError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ref() -> plan.Reference:
    # The data file's own measurements, whatever build/bench.json holds on this machine.
    return plan.Reference.load(bench=None)


def test_record_sizes_and_firehose_billing(ref):
    # 139 bytes besides the values, 5.8305 bytes per value
    assert plan.record_bytes(1000, ref) == 5970
    assert plan.record_bytes(10_000, ref) == 58_444
    # billed per record, rounded up to 5 KB
    assert plan.billed_bytes(5120, ref) == 5120
    assert plan.billed_bytes(5121, ref) == 10_240
    assert plan.billed_bytes(5970, ref) == 10_240
    assert plan.billed_bytes(58_444, ref) == 61_440


def test_cpu_share_and_per_document_cost(ref):
    assert plan.vcpus(1769, ref) == 1.0
    assert plan.vcpus(1024, ref) == pytest.approx(0.57886, rel=1e-4)
    assert plan.vcpus(3008, ref) == 1.0  # one event loop uses one core
    # 6,053.4 and 2,078.7 documents/s measured; linear in between
    assert plan.consumer_cpu_s(1000, ref) == pytest.approx(165.20e-6, rel=1e-3)
    assert plan.consumer_cpu_s(10_000, ref) == pytest.approx(481.07e-6, rel=1e-3)
    assert plan.consumer_cpu_s(5500, ref) == pytest.approx(323.14e-6, rel=1e-3)


def test_put_calls_respect_500_records_4_mib_and_the_streams(ref):
    assert plan.put_calls(1000, 5970, 1, ref) == 2  # 500 records a call
    assert plan.put_calls(1000, 58_444, 1, ref) == 15  # 71 records fill 4 MiB
    assert plan.put_calls(1000, 5970, 4, ref) == 4  # 250 records to each stream
    assert plan.put_calls(3, 5970, 4, ref) == 3  # three records reach three streams


def test_burst_drains_as_the_event_source_scales(ref):
    # five invocations at first: ten documents at 1/s each take two seconds
    assert plan.drain_seconds(10, 1.0, 10, ref) == pytest.approx(2.0)
    # 5 x 10 x 60 = 3,000 in the first minute, then 305 invocations: 97,000 / 3,050
    assert plan.drain_seconds(100_000, 10.0, 1000, ref) == pytest.approx(60 + 97_000 / 3050)
    # held at the ceiling
    assert plan.drain_seconds(1_000_000, 1.0, 5, ref) == pytest.approx(200_000)


def test_one_million_an_hour_worked_by_hand(ref):
    # given 1M documents of 1,000 values, 1,024 MB, 32 fetches of 100 ms in flight, 1 stream
    work = plan.Workload(
        docs_per_hour=1e6, fetch_concurrency=32, api_latency_ms=100, firehose_streams=1
    )
    # when planned
    p = plan.plan(work, ref)
    # then a document takes 3.125 ms of fetch latency + 78.38 us of put CPU (45.37 us on
    # 0.5789 of a core) + 12.5 us of put round trip (50 ms for 500, eight calls at once):
    # 622 documents keep the 100 ms overhead under 5 %, rounded up to 630
    assert (p.batch_size, p.batch_bound, p.put_calls_per_batch) == (630, "overhead", 2)
    # its two calls go side by side: one round trip
    assert p.batch_seconds == pytest.approx(0.1 + 630 * (0.003125 + 78.38e-6) + 0.05, rel=1e-4)
    assert p.invocation_docs_s == pytest.approx(290.57, rel=1e-3)
    assert p.steady_concurrency == pytest.approx(0.9560, rel=1e-3)
    assert p.max_concurrency == 2
    # 128 MiB objects, 44.48 an hour, 4.16 s each
    assert p.object_mib == 128
    assert p.objects_per_hour == pytest.approx(44.48, rel=1e-3)
    assert p.writer_seconds_per_object == pytest.approx(4.160, rel=1e-3)
    # the producer needs 1,024 MB (3.70 ms a call) and 7 threads: 370.7 s a tick
    assert (p.producer_memory_mb, p.producer_threads) == (1024, 7)
    assert p.producer_tick_s == pytest.approx(370.7, rel=1e-3)
    # the compactor rewrites 2.03 GB in 64.2 s, one run an hour
    assert p.compaction_seconds_per_hour == pytest.approx(64.24, rel=1e-3)
    assert p.compaction_runs_per_hour == 1
    # costs: 3,441.5 + 370.1 + 370.7 + 128.5 GB-s and 1,633.8 requests; 100,000 x 3 SQS
    # requests; 1M x 10,240 bytes into Firehose
    cost = p.cost_per_hour
    assert cost["lambda"] == pytest.approx(4310.8 * 0.0000166667 + 1633.8 * 0.2e-6, rel=1e-3)
    assert cost["sqs"] == pytest.approx(0.12)
    assert cost["firehose"] == pytest.approx(1e6 * 10_240 / 2**30 * 0.029)
    assert p.cost_per_million_docs == pytest.approx(p.hourly_cost)
    assert p.monthly_cost == pytest.approx(730 * p.hourly_cost)


def test_arm64_is_priced_at_its_own_rate(ref):
    work = plan.Workload(docs_per_hour=1e6, fetch_concurrency=32, firehose_streams=1)
    x86 = plan.plan(work, ref).cost_per_hour["lambda"]
    arm = plan.plan(replace(work, architecture="arm64"), ref).cost_per_hour["lambda"]
    requests = (1e6 / 630 + 44.48 + 2) * 0.2e-6
    assert (arm - requests) / (x86 - requests) == pytest.approx(0.0000133334 / 0.0000166667)


def test_one_stream_binds_and_the_chosen_streams_lift_it(ref):
    # given 10M documents of 10,000 values an hour: 154.8 MiB/s
    work = plan.Workload(docs_per_hour=1e7, values_per_doc=10_000)
    # when held to one stream, then its 5 MiB/s quota binds first
    one = plan.plan(replace(work, firehose_streams=1), ref)
    assert one.ingest_mib_s == pytest.approx(154.8, rel=1e-3)
    assert one.binding.name == "Firehose MiB/s per stream"
    assert one.binding.share == pytest.approx(154.8 / 5, rel=1e-3)
    # when the plan chooses: 31 streams would do, 25 % headroom makes 39
    chosen = plan.plan(work, ref)
    assert chosen.firehose_streams == 39
    firehose = [limit for limit in chosen.limits if limit.name.startswith("Firehose")]
    assert all(limit.share < 0.8 for limit in firehose)
    # and the producer's 1M SendMessageBatch calls of 2.14 ms on a full core take 5 shards
    # to fit in half of 900 s
    assert chosen.producer_shards == 5
    assert chosen.producer_tick_s == pytest.approx(1 + 200_000 * 0.00214, rel=1e-3)
    # but 203 GB of parquet an hour at 31.6 MB/s is too much for four compactor runs
    over = {limit.name.split(":")[0]: limit.share for limit in chosen.limits if limit.share > 1}
    assert over == {"compactor": pytest.approx(1e7 * 10_000 * 2.03 / 31.6e6 / 4 / 900)}
    assert chosen.binding.name.startswith("compactor")
    assert chosen.tfvars()["compaction_schedule_expression"] == "rate(15 minutes)"


def test_a_full_core_fills_lambdas_payload(ref):
    # a full core: 0.3106 ms a document would take 6,439 for a 5 % overhead, but 6 MB of
    # event at 1 KB a message holds 6,144
    p = plan.plan(plan.Workload(docs_per_hour=1e6, consumer_memory_mb=1769), ref)
    assert p.fetch_concurrency == 670  # 100 ms x 1 core / 165.2 us, +10 %
    assert (p.batch_size, p.batch_bound) == (6144, "payload")


def test_documents_over_firehoses_record_limit_cannot_flow(ref):
    # 200,000 values: 1,166,239-byte records, over 1,000 KiB
    p = plan.plan(plan.Workload(docs_per_hour=1e4, values_per_doc=200_000), ref)
    assert p.binding.name == "Firehose record size"
    assert p.binding.share == pytest.approx(1_166_239 / 1_024_000)


def test_other_regions_get_their_quota_but_no_cost(ref):
    p = plan.plan(plan.Workload(docs_per_hour=1e6, region="eu-central-1"), ref)
    mib = next(limit for limit in p.limits if limit.name.endswith("MiB/s per stream"))
    assert mib.limit == 1
    assert not p.priced and p.cost_per_hour == {}
    with pytest.raises(CliError, match="no Firehose quota for region 'mars-1'"):
        plan.plan(plan.Workload(docs_per_hour=1e6, region="mars-1"), ref)


def test_bench_results_replace_the_data_files_figures(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "consumer": {"1k": {"docs_s": 5000.0}, "10k": {"docs_s": 1000.0}},
                "writer": {"rows_s": 20_000.0, "values_per_document": 1000},
            }
        )
    )
    found = plan.Reference.load(bench=bench)
    assert found.consumer_docs_s == ((1000, 5000.0), (10_000, 1000.0))
    assert found.writer_values_s == 20_000_000.0
    assert found.measured_from == str(bench)
    missing = plan.Reference.load(bench=tmp_path / "none.json")
    assert missing.consumer_docs_s == ((1000, 6053.4), (10_000, 2078.7))
    assert "[measured]" in missing.measured_from


def test_every_price_and_limit_names_its_source_and_date():
    data = tomllib.loads(plan.DATA.read_text())
    for group in ("prices", "limits"):
        for name, entry in data[group].items():
            if isinstance(entry, dict):
                assert entry["source"].startswith("https://"), name
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", entry["read"]), name


def test_tfvars_are_infra_variables():
    declared = set(
        re.findall(r'^variable "(\w+)"', (ROOT / "infra/variables.tf").read_text(), re.M)
    )
    p = plan.plan(plan.Workload(docs_per_hour=1e6), plan.Reference.load(bench=None))
    assert set(p.tfvars()) <= declared


def test_command_prints_the_default_table(capsys):
    assert main(["plan", "--bench", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"documents per hour\s+10k\s+1M\s+100M", out)
    assert "binds first" in out and "per million documents" in out
    assert "prices and limits read 2026-11-27" in out


def test_command_json_and_tfvars(capsys):
    assert main(["plan", "--docs-per-hour", "2.5M", "--values-per-doc", "500", "--json"]) == 0
    [found] = json.loads(capsys.readouterr().out)["plans"]
    assert found["workload"]["docs_per_hour"] == 2_500_000
    assert found["binding"] in {limit["name"] for limit in found["limits"]}
    assert main(["plan", "--docs-per-hour", "1M", "--tfvars"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^firehose_streams = 1$", out, re.M)
    assert re.search(r"^consumer_batch_size = \d+$", out, re.M)


def test_command_refuses_bad_input_in_one_line(capsys):
    assert main(["plan", "--tfvars"]) == 2
    assert "--tfvars plans one rate" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--docs-per-hour", "lots"])
    assert exited.value.code == 2
    assert "'lots' is not a count like 5000, 10k or 1M" in capsys.readouterr().err
    assert main(["plan", "--region", "mars-1"]) == 2
    assert "no Firehose quota for region 'mars-1'" in capsys.readouterr().err


def test_ceilings_put_one_streams_quota_first_and_lift_it_with_streams(ref):
    # given one stream and one producer: 5 MiB/s of 5,970-byte records is 3,161,537 an hour
    fixed = plan.Workload(docs_per_hour=1, firehose_streams=1, producer_shards=1)
    found = plan.ceilings(fixed, ref)
    (first, rate), (second, then) = found[0], found[1]
    assert first.name == "Firehose MiB/s per stream"
    assert rate == pytest.approx(5 * 2**20 / 5970 * 3600, rel=1e-3)
    # then the producer: on a full vCPU a call of ten takes 2.14 ms, so 899 s send 4.2M
    assert second.name == "producer: a tick in 900 s"
    assert then == pytest.approx(899 / 0.00214 * 10, rel=1e-3)
    # when the plan may choose streams and shards, neither binds before the compactor
    chosen = plan.ceilings(plan.Workload(docs_per_hour=1), ref)
    assert chosen[0][0].name == "compactor: a run in 900 s"
    names_after = [limit.name for limit, rate in chosen if rate and rate > chosen[0][1]]
    assert "Firehose MiB/s per stream" not in names_after


def test_command_prints_ceilings(capsys):
    args = ["plan", "--ceilings", "--firehose-streams", "1", "--producer-shards", "1"]
    assert main([*args, "--bench", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert "Firehose streams 1, producer shards 1" in out
    first = out.splitlines()[2]
    assert first.split()[:4] == ["Firehose", "MiB/s", "per", "stream"]
    assert "3.16M" in first and "firehose_streams" in first


def test_sqs_bills_each_64_kb_of_a_request(ref):
    # given ten 1 KB messages a call: one 64 KB chunk, 3 requests per ten documents
    work = plan.Workload(docs_per_hour=1e6)
    assert plan.plan(work, ref).cost_per_hour["sqs"] == pytest.approx(3e5 * 0.4e-6)
    # when each message carries 10 KB: 100 KB a call, billed as two requests
    heavy = replace(ref, assumptions={**ref.assumptions, "sqs_event_bytes_per_message": 10_000})
    assert plan.plan(work, heavy).cost_per_hour["sqs"] == pytest.approx(6e5 * 0.4e-6)
