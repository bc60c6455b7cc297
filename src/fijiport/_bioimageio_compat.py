"""Work-arounds for bioimageio.spec 0.5.12 behaviour that breaks offline use.

With I/O checks on, bioimageio.spec verifies every ``github_user`` against GitHub's API. It turns
a time-out into a warning but lets any other network failure (no route, no DNS: the normal case
on an offline workstation or a cluster node) escape as an ``httpx.ConnectError`` that aborts
loading the whole model. :func:`offline_tolerant_github_check` makes every network failure a
logged warning, as a time-out already is; an unknown user reported by GitHub still fails.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def offline_tolerant_github_check() -> Iterator[None]:
    import httpx
    from bioimageio.spec._internal import field_validation
    from bioimageio.spec.generic import v0_3

    original = field_validation.validate_github_user

    @functools.wraps(original)
    def tolerant(username: str, *args, **kwargs) -> str:
        try:
            return original(username, *args, **kwargs)
        except httpx.TransportError as e:
            log.warning("could not verify GitHub user %r (no network: %s); not checked", username, e)
            return username

    modules = (field_validation, v0_3)
    for mod in modules:
        mod.validate_github_user = tolerant
    try:
        yield
    finally:
        for mod in modules:
            mod.validate_github_user = original
