"""Benchmarks: ratios against a baseline measured in the same run, never timed assertions.

    python -m bench [consumer] [writer] ...

Each section is a module here with ``run(args) -> dict``; its result is merged into
``build/bench.json`` under the section's name, leaving the other sections as they were.
"""
