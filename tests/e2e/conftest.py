"""End-to-end tests run the whole stack through the local Lambda runner."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2] / "build" / "lambda"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "e2e":
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def packages() -> Path:
    """The built Lambda packages (``make package``); the runner runs exactly these."""
    missing = [
        f for f in ("producer", "consumer", "writer") if not (PACKAGES / f"{f}.zip").exists()
    ]
    if missing:
        pytest.fail(f"no package for {missing} in {PACKAGES}: run `make package` first")
    return PACKAGES
