"""``fijiport convert``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..export.convert import convert_package
from ._common import out, print_diffs, spinner


def convert(
    source: Path = typer.Argument(
        ...,
        help="A CSBDeep/StarDist TF_SavedModel.zip, or a bioimage.io package (spec 0.4 or 0.5) with TensorFlow or Keras weights.",
        show_default=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The repaired zip to write (the input is never changed).", show_default=False),
    opset: int = typer.Option(17, "--opset", help="ONNX opset for bioimage.io packages (≤ 17 for deepImageJ's onnxruntime 1.13.1)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output if it exists."),
    trust_code: bool = typer.Option(
        False,
        "--trust-code",
        help="Allow a package that asks to run its own Python code (e.g. a PyTorch architecture file) or whose TensorFlow/ONNX graphs use ops outside fijiport's inference allow-list (file or Python ops, custom ONNX domains); only for packages from people you trust.",
    ),
) -> None:
    """Repair a model someone exported so that Fiji, deepImageJ and KNIME load it.

    Freezes the TensorFlow graph (variables folded into constants, only the inference subgraph, ops
    TF 1.13–1.15 know), proves every rewrite by running old and new graph, and for bioimage.io
    packages adds ONNX weights and writes spec 0.5, keeping name, authors, citations, test tensors
    and Keras weights. Check the result with `fijiport runtimes check OUT.zip`.

    Example: [bold]fijiport convert TF_SavedModel.zip -o TF_SavedModel_fiji.zip[/]
    """

    with spinner("converting") as update:
        result = convert_package(source, output, overwrite=overwrite, opset=opset, progress=update, trust_code=trust_code)
    print_diffs(f"{output} ({result.kind})", result.max_diffs, "max |diff| to the original")
    out.print(f"graph rewrites: {', '.join(result.rewrites) or 'none'}")
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"converted: {output}")
