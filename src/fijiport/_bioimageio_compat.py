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


def read_model_package(source, *, purpose: str = "this command", trust_code: bool = False):
    """The bioimage.io model description of a package zip or rdf.yaml (spec 0.4 read as 0.5).

    Raises :class:`~fijiport.errors.DataError` naming the package and the first reasons when it is
    not a readable model description.
    """
    from bioimageio.spec import load_model_description
    from bioimageio.spec.model import v0_5

    from .errors import DataError
    from .untrusted import inspect_package

    inspect_package(source, trust_code=trust_code)  # before bioimageio.spec opens anything
    try:
        with offline_tolerant_github_check():
            descr = load_model_description(source, perform_io_checks=False, format_version="latest")
    except Exception as e:  # unreadable zip, missing rdf.yaml, YAML errors
        raise DataError(f"{source} is not a readable bioimage.io package ({type(e).__name__}: {e})") from None
    if not isinstance(descr, v0_5.ModelDescr):
        summary = getattr(descr, "validation_summary", None)
        reasons = []
        for d in getattr(summary, "details", []) or []:
            reasons += [f"{'.'.join(map(str, e.loc))}: {e.msg}" if e.loc else e.msg for e in d.errors]
        why = "; ".join(reasons[:3]) or type(descr).__name__
        raise DataError(f"{source} is not a valid bioimage.io model description for {purpose} ({why}); "
                        f"`fijiport validate {source}` lists every problem")
    return descr
