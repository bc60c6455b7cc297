"""Child process of ``fijiport validate``: bioimageio.core's tests in the Keras 3 world.

Run as ``python -m fijiport.verify.worker PACKAGE OUT_DIR`` with ``TF_USE_LEGACY_KERAS``
unset and a temporary working directory (bioimageio.core unzips TensorFlow weights into the
current directory). Writes ``OUT_DIR/results.json`` and one ``<format>.npy`` output per weight
format that ran, computed on the package's test input.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any, cast


def _entries(summary) -> list[dict]:
    out = []
    for d in summary.details:
        errors = [f"{'.'.join(map(str, e.loc))}: {e.msg}" if e.loc else e.msg for e in d.errors]
        warnings = [f"{'.'.join(map(str, w.loc))}: {w.msg}" if w.loc else w.msg for w in d.warnings]
        out.append({"name": d.name, "status": d.status, "errors": errors, "warnings": warnings})
    return out


def main(package: str, out_dir: str) -> int:
    from fijiport.package.read import offline_tolerant_github_check

    with offline_tolerant_github_check():
        return _run(package, Path(out_dir))


def _run(package: str, out: Path) -> int:
    import numpy as np
    from bioimageio.core import create_prediction_pipeline, test_model
    from bioimageio.core.digest_spec import get_test_input_sample
    from bioimageio.spec import load_model_description

    results: dict = {"formats": {}}
    descr = load_model_description(package, perform_io_checks=False, format_version="latest")  # 0.4 read as 0.5
    formats = [name for name, entry in descr.weights if entry is not None]
    results["weight_formats"] = formats
    results["output_ids"] = [str(o.id) for o in descr.outputs]
    for fmt in formats:
        rec: dict = {"status": "failed", "details": [], "error": None, "output": None}
        try:
            summary = test_model(package, weight_format=cast(Any, fmt))
            rec["status"] = summary.status
            rec["details"] = _entries(summary)
        except Exception as e:  # a crash of the test itself is a failure of this format
            rec["error"] = f"{type(e).__name__}: {e}"
            rec["traceback"] = traceback.format_exc()
        try:
            pp = create_prediction_pipeline(descr, weight_format=cast(Any, fmt))
            sample = get_test_input_sample(descr)
            # as the test does: the test input as it is, no halo padding or cropping
            result = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
            first = descr.outputs[0].id
            arr = result.members[first].data.to_numpy()
            np.save(out / f"{fmt}.npy", arr.astype(np.float32, copy=False) if arr.dtype.kind == "f" else arr)
            rec["output"] = f"{fmt}.npy"
        except Exception as e:
            rec["prediction_error"] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:400]}"
        results["formats"][fmt] = rec
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
