"""EventBridge's input transformer, for the local runner's schedule ticks.

Where the runner fires a rule itself, a target's ``InputTransformer`` must shape the event
as EventBridge would: each ``<name>`` of the template takes the value the name's JSON path
finds in the event; inside quotes a string goes in as it is (escaped for JSON), elsewhere
a value goes in as JSON. Paths are what EventBridge evaluates: dot notation and array
indices (``$.time``, ``$.resources[0]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


def find(event: Any, path: str) -> Any:
    """The value at ``path`` (``$.a.b[0]``) in ``event``, or None where there is none."""
    if not path.startswith("$"):
        raise ValueError(f"input path {path!r} does not start with $")
    value, rest = event, path[1:]
    while rest:
        step = _STEP.match(rest)
        if not step:
            raise ValueError(f"input path {path!r}: only .name and [index] steps are supported")
        key, index = step.groups()
        if key is not None:
            value = value.get(key) if isinstance(value, Mapping) else None
        else:
            position = int(index)
            value = value[position] if isinstance(value, list) and position < len(value) else None
        rest = rest[step.end() :]
    return value


def transform(transformer: Mapping[str, Any], event: Any) -> Any:
    """The input a target with ``transformer`` (``InputPathsMap``/``InputTemplate``, or
    Terraform's ``input_paths``/``input_template``) receives for ``event``, parsed."""
    paths = transformer.get("InputPathsMap", transformer.get("input_paths")) or {}
    template = str(transformer.get("InputTemplate", transformer.get("input_template")))
    values = {name: find(event, path) for name, path in paths.items()}

    def fill(match: re.Match[str]) -> str:
        quoted, name = match.group(1) is not None, match.group(2)
        if name not in values:
            return match.group(0)
        value = values[name]
        if quoted:
            return json.dumps(value if isinstance(value, str) else json.dumps(value))
        return json.dumps(value)

    rendered = re.sub(r'(")?<([A-Za-z0-9_.-]+)>(?(1)")', fill, template)
    return json.loads(rendered)
