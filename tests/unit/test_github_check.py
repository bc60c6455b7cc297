"""Offline, the GitHub-user check of bioimageio.spec warns once per user and process (issue 21: export printed
"could not verify GitHub user" 4 times, validate twice)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def no_network(monkeypatch):
    """GitHub unreachable, as on an offline workstation: every request goes to a closed local port."""
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    from fijiport.package import read

    monkeypatch.setattr(read, "_unverified_github_users", set())  # this test's process starts afresh


def test_unverifiable_github_user_is_warned_about_once(no_network, caplog):
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model.v0_5 import Author, Maintainer

    from fijiport.package.read import offline_tolerant_github_check

    caplog.set_level(logging.WARNING, logger="fijiport")
    with ValidationContext(perform_io_checks=True):
        for _ in range(2):  # export checks the rdf in more than one step, each in its own block
            with offline_tolerant_github_check():
                assert Maintainer(github_user="fijiport-issue21-a").github_user == "fijiport-issue21-a"
                Author(name="A", github_user="fijiport-issue21-a")
                Maintainer(github_user="fijiport-issue21-b")
    warned = [r.getMessage() for r in caplog.records if "could not verify GitHub user" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "'fijiport-issue21-a'" in warned[0] and "not checked" in warned[0]
    assert "'fijiport-issue21-b'" in warned[1]
