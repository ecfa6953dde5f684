"""End-to-end tests run the whole stack through the local Lambda runner.

``E2E_EMULATOR=localstack`` runs them against LocalStack (``make e2e-localstack``);
moto is the default.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localstack.stack import EMULATORS

PACKAGES = Path(__file__).resolve().parents[2] / "build" / "lambda"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "e2e":
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def emulator() -> str:
    """The emulator the suite runs against."""
    chosen = os.environ.get("E2E_EMULATOR", "moto")
    if chosen not in EMULATORS:
        pytest.fail(f"E2E_EMULATOR={chosen!r}: choose from {EMULATORS}")
    return chosen


@pytest.fixture(scope="session")
def packages() -> Path:
    """The built Lambda packages (``make package``); the runner runs exactly these."""
    missing = [
        f for f in ("producer", "consumer", "writer") if not (PACKAGES / f"{f}.zip").exists()
    ]
    if missing:
        pytest.fail(f"no package for {missing} in {PACKAGES}: run `make package` first")
    return PACKAGES
