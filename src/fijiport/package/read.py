"""Reading anyone's bioimage.io model package without TensorFlow: its description, its config blocks and
its test tensors as the network sees them.

bioimageio.spec 0.5.12 breaks offline use: with I/O checks on, bioimageio.spec verifies every ``github_user`` against GitHub's API. It turns
a time-out into a warning but lets any other network failure (no route, no DNS: the normal case
on an offline workstation or a cluster node) escape as an ``httpx.ConnectError`` that aborts
loading the whole model. :func:`offline_tolerant_github_check` makes every network failure a
logged warning, as a time-out already is; an unknown user reported by GitHub still fails. The
warning comes once per user and process: export and validate read the rdf several times, and a
user that could not be reached is not asked for again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import cast

import numpy as np

from ..errors import DataError, DependencyError
from .untrusted import inspect_package

log = logging.getLogger(__name__)

_unverified_github_users: set[str] = set()
"""GitHub users this process could not verify (no network): warned about once, not asked for again."""


@contextlib.contextmanager
def offline_tolerant_github_check() -> Iterator[None]:
    import httpx
    from bioimageio.spec._internal import field_validation
    from bioimageio.spec.generic import v0_3

    original = getattr(field_validation, "validate_github_user", None)
    if not callable(original) or getattr(v0_3, "validate_github_user", None) is not original:
        from importlib.metadata import version

        raise DependencyError(
            f"bioimageio.spec {version('bioimageio.spec')} no longer has validate_github_user where fijiport makes it work "
            "offline (bioimageio.spec._internal.field_validation, used by bioimageio.spec.generic.v0_3); fijiport is tested "
            "with bioimageio.spec 0.5.12.0: install the versions in packaging/constraints.txt "
            "(pip install -c packaging/constraints.txt -e .), or report this to fijiport"
        )

    check = cast(Callable[..., str], original)

    @functools.wraps(check)
    def tolerant(username: str, *args, **kwargs) -> str:
        if username in _unverified_github_users:
            return username
        try:
            return check(username, *args, **kwargs)
        except httpx.TransportError as e:
            _unverified_github_users.add(username)
            log.warning("could not verify GitHub user %r (no network: %s); not checked", username, e)
            return username

    modules = (field_validation, v0_3)
    for mod in modules:
        setattr(mod, "validate_github_user", tolerant)  # noqa: B010 (a module attribute: patched for the block)
    try:
        yield
    finally:
        for mod in modules:
            setattr(mod, "validate_github_user", original)  # noqa: B010


def read_model_package(source, *, purpose: str = "this command", trust_code: bool = False):
    """The bioimage.io model description of a package zip or rdf.yaml (spec 0.4 read as 0.5).

    Raises :class:`~fijiport.errors.DataError` naming the package and the first reasons when it is
    not a readable model description.
    """
    from bioimageio.spec import load_model_description
    from bioimageio.spec.model import v0_5

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
        raise DataError(
            f"{source} is not a valid bioimage.io model description for {purpose} ({why}); `fijiport validate {source}` lists every problem"
        )
    return descr


def load_description(source, *, io_checks: bool = False):
    """The description of a package that :func:`~fijiport.package.untrusted.inspect_package` has checked, read
    as the newest spec (0.4 packages as 0.5), offline-tolerant. Whatever bioimageio.spec raises is raised."""
    from bioimageio.spec import load_model_description

    with offline_tolerant_github_check():
        if io_checks:
            return load_model_description(source, perform_io_checks=True)
        return load_model_description(source, perform_io_checks=False, format_version="latest")


def config_dict(descr) -> dict:
    """The rdf's ``config`` as plain data (``config.fijiport``, ``config.stardist``, ``config.deepimagej``, ...)."""
    config = getattr(descr, "config", None)
    if config is None:
        return {}
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    return {k: v for k, v in data.items() if v is not None}  # spec 0.5 models every known block, unset ones as None


def weight_formats(descr) -> list[str]:
    """The weight formats a description declares, in the spec's order."""
    return [name for name, entry in descr.weights if entry is not None]


def network_test_io(descr) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The network's input for the package's test input (after the rdf's preprocessing), the
    package's test output, and the rdf's postprocessing as a function on raw network output."""
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.digest_spec import get_test_input_sample, get_test_output_sample
    from bioimageio.core.proc_setup import setup_pre_and_postprocessing

    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    sample = get_test_input_sample(descr)
    pre, post = setup_pre_and_postprocessing(descr, [sample])
    for op in pre:
        op(sample)
    in_dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    out_dims = tuple(str(a.id) for a in descr.outputs[0].axes)
    x = sample.members[in_id].data.transpose(*in_dims).to_numpy().astype(np.float32)
    ref = get_test_output_sample(descr).members[out_id].data.transpose(*out_dims).to_numpy()

    def postprocess(y: np.ndarray) -> np.ndarray:
        if not post:
            return y
        out = Sample(members={out_id: Tensor.from_numpy(y, dims=out_dims)}, stat=sample.stat, id="fijiport")
        for op in post:
            op(out)
        return out.members[out_id].data.transpose(*out_dims).to_numpy()

    return x, ref, postprocess
