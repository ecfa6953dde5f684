"""Run benchmark sections and merge their results into build/bench.json."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "bench.json"
SECTIONS = ("consumer", "writer", "scale")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "sections", nargs="*", metavar="section", help=f"of {', '.join(SECTIONS)} (default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer documents: a smoke run, not a measurement"
    )
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for section in args.sections or SECTIONS:
        module = importlib.import_module(f"bench.{section}")
        print(f"== {section}", flush=True)
        results[section] = module.run(args)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
