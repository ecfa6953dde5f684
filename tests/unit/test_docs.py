"""The README and the code agree: every setting and every make target is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SOURCES = [
    path
    for folder in ("fanout_core", "producer", "consumer", "writer", "localstack", "fanout_cli")
    for path in (ROOT / folder).rglob("*.py")
]


def test_every_fanout_variable_the_code_reads_is_in_the_settings_table():
    variables = {v for path in SOURCES for v in re.findall(r"FANOUT_[A-Z0-9_]+", path.read_text())}
    table = set(re.findall(r"^\| `(FANOUT_[A-Z0-9_]+)` \|", README, re.M))
    assert variables, "the scan found no settings at all"
    assert variables - table == set()
    assert table - variables == set(), "the README documents settings the code no longer reads"


def test_every_make_target_with_help_is_in_the_readme():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.M))
    assert {"run", "test", "help"} <= targets
    undocumented = {t for t in targets if f"make {t}" not in README}
    assert undocumented == set()
