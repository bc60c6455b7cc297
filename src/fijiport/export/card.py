"""The README model card of an exported package, from ``packaging/model_card_*.md`` and the kind's values."""

from __future__ import annotations

from string import Template
from typing import Any

from .._resources import packaging_text


def render_card(template_name: str, values: dict[str, Any]) -> str:
    text = packaging_text(template_name)
    return Template(text).substitute({k: ("" if v is None else v) for k, v in values.items()})
