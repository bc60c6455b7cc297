"""Interop tests need the real consumer runtimes; a missing one fails the run (never a skip)."""

import pytest

from fijiport.runtimes import default_cache_dir, runtime_status


@pytest.fixture(scope="session")
def runtimes_dir():
    missing = [s.name for s in runtime_status() if not s.installed]
    if missing:
        pytest.fail(f"runtimes {missing} are not installed in {default_cache_dir()}: run `make runtimes`")
    return default_cache_dir()
