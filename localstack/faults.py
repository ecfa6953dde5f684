"""Faults the local stack can inject, and what each descriptor must become because of them.

A fault plan is written as one string, ``name=rate`` pairs separated by commas::

    5xx=0.1,429=0.05,hang=0.02,bad=0.03,firehose-partial=0.1,device:dev-00007=503

Rates are probabilities in [0, 1]. Faults of the API's *answers* are of two kinds:

* **transient** (``tail``, ``hang``, ``reset``, ``truncate``, ``500``, ``502``, ``503``,
  ``429``, ``429-date``) are drawn afresh for every request, so a retry can succeed; a
  descriptor meets at most ``streak`` of them in a row (default 4);
* **terminal** (``400``, ``404``, ``410``, ``malformed``, ``float``, ``string``, ``bool``,
  ``null``, ``overflow``, ``missing-key``, ``extra-key``, ``bad-datetime``, ``oversize``)
  are drawn once per descriptor: the same bad answer every time.

``gzip`` answers with a gzip-encoded body (valid: it must land). ``latency=MS`` delays every
answer by MS milliseconds. Groups: ``5xx`` (500, 502, 503), ``4xx`` (400, 404, 410),
``bad`` (every bad-document kind). ``device:ID=FAULT`` gives one device that fault on every
request: a transient one sends its descriptors to the dead-letter queue, a terminal one to
quarantine. The stack's own faults: ``firehose-partial`` (each record of a PutRecordBatch
refused, FailedPutCount), ``firehose-call`` (a whole PutRecordBatch call fails), and
``timeout`` (a consumer invocation gets only 1-6 s to live and runs out mid-batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from fanout_cli import reconcile

TRANSIENT = ("tail", "hang", "reset", "truncate", "500", "502", "503", "429", "429-date")
BAD_DOCUMENTS = (
    "malformed", "float", "string", "bool", "null", "overflow", "missing-key", "extra-key",
    "bad-datetime",
)  # fmt: skip
TERMINAL = ("400", "404", "410", *BAD_DOCUMENTS, "oversize")
VARIANTS = ("gzip",)
STACK = ("firehose-partial", "firehose-call", "timeout")
GROUPS = {"5xx": ("500", "502", "503"), "4xx": ("400", "404", "410"), "bad": BAD_DOCUMENTS}

#: The quarantine reason each terminal fault must produce.
EXPECTED_REASON = {
    "400": "upstream_rejected",
    "404": "upstream_rejected",
    "410": "upstream_rejected",
    "malformed": "malformed_json",
    **{kind: "invalid_document" for kind in BAD_DOCUMENTS if kind != "malformed"},
    "oversize": "body_too_large",
}

# The outcome names reconciliation uses, so expectations and findings compare directly.
WRITTEN = reconcile.WRITTEN
DEAD_LETTERED = reconcile.DEAD_LETTERED


class FaultSpecError(ValueError):
    """A fault plan string that does not parse; the message says which part."""


def _check_rates(rates: Mapping[str, float]) -> None:
    if any(not 0 <= rate <= 1 for rate in rates.values()):
        raise FaultSpecError("every rate must be between 0 and 1")
    for kinds, what in ((TRANSIENT, "transient"), (TERMINAL, "terminal")):
        total = sum(rates.get(kind, 0.0) for kind in kinds)
        if total > 1:
            raise FaultSpecError(f"{what} rates add up to {total:.2f}, more than 1")


def uniform(seed: int, *parts: object) -> float:
    """A deterministic draw in [0, 1) from ``seed`` and ``parts``."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class FaultPlan:
    """Which faults, how often, and for which devices always."""

    rates: Mapping[str, float] = field(default_factory=dict)
    devices: Mapping[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    streak: int = 4
    seed: int = 0

    @classmethod
    def parse(cls, spec: str, seed: int = 0) -> FaultPlan:
        """Read a plan string (see the module docstring); empty means no faults.

        Raises:
            FaultSpecError: Naming the part that is wrong.
        """
        rates: dict[str, float] = {}
        devices: dict[str, str] = {}
        settings = {"latency": 0.0, "streak": 4.0}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, equals, value = (text.strip() for text in part.partition("="))
            if not equals:
                raise FaultSpecError(f"{part!r}: expected name=value")
            if name.startswith("device:"):
                if value not in TRANSIENT + TERMINAL:
                    raise FaultSpecError(
                        f"{part!r}: {value!r} is not a transient or terminal fault"
                    )
                devices[name.removeprefix("device:")] = value
                continue
            try:
                number = float(value)
            except ValueError as exc:
                raise FaultSpecError(f"{part!r}: {value!r} is not a number") from exc
            if name in settings:
                settings[name] = number
                continue
            members = GROUPS.get(name, (name,))
            if members[0] not in TRANSIENT + TERMINAL + VARIANTS + STACK:
                known = ", ".join((*TRANSIENT, *TERMINAL, *VARIANTS, *STACK, *GROUPS))
                raise FaultSpecError(f"{part!r}: unknown fault {name!r} (known: {known})")
            for member in members:
                rates[member] = rates.get(member, 0.0) + number / len(members)
        _check_rates(rates)
        return cls(rates, devices, settings["latency"], int(settings["streak"]), seed)

    def __bool__(self) -> bool:
        return bool(self.rates or self.devices or self.latency_ms)

    def rate(self, name: str) -> float:
        return self.rates.get(name, 0.0)

    def _pick(self, kinds: tuple[str, ...], draw: float) -> str | None:
        cumulative = 0.0
        for kind in kinds:
            cumulative += self.rate(kind)
            if draw < cumulative:
                return kind
        return None

    def terminal_fault(self, device: str, descriptor_id: str) -> str | None:
        """The bad answer this descriptor always gets, if any."""
        forced = self.devices.get(device)
        if forced is not None:
            return forced if forced in TERMINAL else None
        return self._pick(TERMINAL, uniform(self.seed, "terminal", descriptor_id))

    def transient_fault(self, device: str, descriptor_id: str, attempt: int) -> str | None:
        """The transient fault of request number ``attempt`` (1-based) for this descriptor."""
        forced = self.devices.get(device)
        if forced is not None:
            return forced if forced in TRANSIENT else None
        if attempt > self.streak:
            return None
        return self._pick(TRANSIENT, uniform(self.seed, "transient", descriptor_id, attempt))

    def gzip(self, descriptor_id: str) -> bool:
        """Whether this descriptor's answer is gzip-encoded."""
        return uniform(self.seed, "gzip", descriptor_id) < self.rate("gzip")

    def expected(self, device: str, descriptor_id: str) -> str:
        """``written``, ``dead_lettered``, or the quarantine reason this descriptor ends with."""
        forced = self.devices.get(device)
        if forced in TRANSIENT:
            return DEAD_LETTERED
        terminal = self.terminal_fault(device, descriptor_id)
        return EXPECTED_REASON[terminal] if terminal else WRITTEN
