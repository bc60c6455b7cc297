"""A griffe extension for the API pages (mkdocs.yml): fijiport's docstrings name other objects with Sphinx roles
(:func:`qc_care`, :class:`~fijiport.package.report.Report`, :data:`METRICS`), as csbdeep's and stardist's do.
Each role is resolved from where the docstring stands (its class, its module, the names its module imports, or a
full path) and rendered as code; one that names nothing is a broken reference: it is logged as a warning, which
fails `mkdocs build --strict` (and so `make test`)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|data|meth|attr|mod|exc|obj):`~?([A-Za-z_][\w.]*)(?:\(\))?`")
logger = griffe.get_logger("griffe_roles") if hasattr(griffe, "get_logger") else griffe.logger


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            docstring = obj.docstring
            if docstring is None or ":" not in docstring.value:
                continue
            for name in ROLE.findall(docstring.value):
                if not _resolves(obj, name):
                    logger.warning(f"{obj.relative_filepath}:{docstring.lineno}: {obj.path}: broken reference `{name}` in its docstring")
            docstring.value = ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1] if m.group(0).count('~') else m.group(1)}`", docstring.value)


def _walk(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _resolves(obj, name: str) -> bool:
    head = name.split(".")[0]
    scopes = [obj, *_parents(obj)]
    for scope in scopes:
        if head in scope.members:
            try:
                target = scope.members[head]
                for part in name.split(".")[1:]:
                    target = target.final_target.members[part] if target.is_alias else target.members[part]
                return True
            except Exception:
                continue
    if "." in name and head != obj.package.name:  # numpy.ndarray, pathlib.Path, ...: another package's, not ours to check
        return True
    try:
        obj.modules_collection[name]
        return True
    except Exception:
        return False


def _parents(obj):
    while obj.parent is not None:
        obj = obj.parent
        yield obj
