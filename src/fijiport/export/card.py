"""The README model card of an exported package, from ``packaging/model_card_*.md``."""

from __future__ import annotations

from string import Template
from typing import Any, Optional

from .._resources import packaging_text


def render_card(template_name: str, values: dict[str, Any]) -> str:
    text = packaging_text(template_name)
    return Template(text).substitute({k: ("" if v is None else v) for k, v in values.items()})


def qc_markdown(qc: Optional[dict[str, Any]]) -> str:
    """A QC table (mean over test images) from a ``qc.json`` written by ``fijiport qc``."""
    if not qc:
        return ("No QC report was given at export. Run `fijiport qc` on held-out paired images and export "
                "again with `--qc qc_report/qc.json` to include its figures here.")
    summary = qc.get("summary", {})
    rows = ["| metric | input vs GT | prediction vs GT |", "|---|---|---|"]
    for metric in ("psnr", "ssim", "nrmse"):
        s = summary.get(metric)
        if s:
            rows.append(f"| {metric.upper()} | {s['input']:.4g} | {s['prediction']:.4g} |")
    n = qc.get("n_images", len(qc.get("images", [])))
    return f"Mean over {n} held-out test image(s) (fijiport qc):\n\n" + "\n".join(rows)


def agreement_markdown(diffs: dict[str, float]) -> str:
    rows = ["| weights | max \\|diff\\| to the Keras reference |", "|---|---|"]
    rows += [f"| {fmt} | {d:.2g} |" for fmt, d in diffs.items()]
    return "\n".join(rows)
