"""deepImageJ 3.x reads rdfs with JDLL's own parser (fijiport.package.jdll): an rdf as fijiport writes it meets every
rule; each rule, broken on its own, is reported with the JDLL code that would throw."""

from __future__ import annotations

import copy

import pytest
import yaml

from fijiport.export.rdf import DEEPIMAGEJ_FORMAT_VERSION, deepimagej_readable
from fijiport.package.jdll import JDLL_COMMIT, READER, RULES, jdll_problems


def _axis(id_: str, **kw) -> dict:
    return {"type": "space", "id": id_, **kw}


def fijiport_rdf() -> dict:
    """The rdf of a CARE package in the form bioimageio.spec 0.5.12 saves it (before fijiport's rewrite)."""
    return {
        "name": "CARE model",
        "description": "CARE image restoration network",
        "covers": [{"source": "cover.png", "sha256": "e9"}],
        "documentation": {"source": "README.md", "sha256": "7e"},
        "authors": [{"name": "Jane Doe", "orcid": "0000-0002-1825-0097", "github_user": "janedoe"}],
        "cite": [{"text": "Weigert et al. 2018", "doi": "10.1038/s41592-018-0216-7"}],
        "license": "CC-BY-4.0",
        "maintainers": [{"github_user": "janedoe"}],
        "tags": ["care", "2d"],
        "format_version": "0.5.12",
        "type": "model",
        "inputs": [
            {
                "id": "input",
                "axes": [
                    {"type": "batch"},
                    _axis("y", size={"min": 92, "step": 4}),
                    _axis("x", size={"min": 92, "step": 4}),
                    {"type": "channel", "channel_names": ["channel0"]},
                ],
                "test_tensor": {"source": "test_input.npy", "sha256": "bb"},
                "preprocessing": [{"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 2.0, "max_percentile": 99.8}}],
            }
        ],
        "outputs": [
            {
                "id": "output",
                "axes": [
                    {"type": "batch"},
                    _axis("y", halo=44, size={"tensor_id": "input", "axis_id": "y"}),
                    _axis("x", halo=44, size={"tensor_id": "input", "axis_id": "x"}),
                    {"type": "channel", "channel_names": ["channel0"]},
                ],
                "test_tensor": {"source": "test_output.npy", "sha256": "a3"},
            }
        ],
        "weights": {
            "keras_hdf5": {"source": "keras_model.h5", "sha256": "4a", "tensorflow_version": "2.21.0"},
            "onnx": {"source": "weights.onnx", "sha256": "18", "opset_version": 17, "parent": "keras_hdf5"},
            "tensorflow_saved_model_bundle": {"source": "tf_saved_model_bundle.zip", "sha256": "06", "tensorflow_version": "1.15.0"},
        },
        "config": {
            "deepimagej": {
                "pyramidal_model": False,
                "allow_tiling": True,
                "model_keys": None,
                "prediction": {"preprocess": [{"spec": None}]},
            },
            "fijiport": {"kind": "care"},
        },
    }


def _readable() -> dict:
    return yaml.safe_load(yaml.safe_dump(deepimagej_readable(fijiport_rdf())))  # as written and read back (YAML 1.1)


def test_bioimageio_spec_0_5_12_form_breaks_three_rules_and_fijiports_form_none():
    """What bioimageio.spec 0.5.12 writes makes JDLL throw (documentation and covers as mappings, no nickname);
    fijiport's rewrite meets every rule."""
    assert {rule for rule, _ in jdll_problems(fijiport_rdf())} == {"strings", "covers", "nickname"}
    rdf = _readable()
    assert jdll_problems(rdf) == []
    assert rdf["format_version"] == DEEPIMAGEJ_FORMAT_VERSION and rdf["documentation"] == "README.md" and rdf["covers"] == ["cover.png"]
    assert rdf["config"]["bioimageio"]["nickname"] == "care-model"
    with_id = deepimagej_readable({**fijiport_rdf(), "id": "affable-shark"})
    assert with_id["config"]["bioimageio"]["nickname"] == "affable-shark"  # a Zoo id stays the nickname


def _set(path: str, value):
    def change(rdf: dict) -> None:
        *parents, last = path.split(".")
        node = rdf
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


DELETE = object()


def _stardist(rdf: dict) -> None:
    rdf["name"] = "StarDist nuclei"
    rdf["config"]["stardist"] = {"thresholds": {"prob": 0.5, "nms": 0.3}}
    del rdf["outputs"][0]["axes"][3]  # labels without a channel axis


def _spec04(rdf: dict) -> None:
    rdf["format_version"] = "0.4.10"
    rdf["inputs"][0]["axes"] = "byxc"
    rdf["inputs"][0]["shape"] = {"min": [1, 92, 92, 1]}  # no step
    rdf["outputs"][0]["axes"] = "byxc"
    rdf["outputs"][0]["shape"] = [1, 92, 92, 1]


BREAKS = {
    "format_version": _set("format_version", 0.5),
    "strings": _set("documentation", {"source": "README.md"}),
    "timestamp": _set("timestamp", None),
    "nickname": _set("config.bioimageio", {}),
    "people": _set("authors.0.orcid", 18251097),
    "cite": _set("cite.0.doi", 10.1038),
    "covers": _set("covers", [{"source": "cover.png"}]),
    "tags": _set("tags", DELETE),
    "tensors": _set("outputs", {"id": "output"}),
    "tensor": _set("inputs.0.axes", "byxc"),
    "axis": _set("inputs.0.axes.3", {"type": "channel"}),
    "axis_size": _set("inputs.0.axes.1.size", 64.0),
    "halo_reference": _set("outputs.0.axes.1.size.tensor_id", "raw"),
    "shape_v04": _spec04,
    "weights": _set("weights", DELETE),
    "tf_version": _set("weights.tensorflow_saved_model_bundle.tensorflow_version", DELETE),
    "deepimagej": _set("config.deepimagej.allow_tiling", None),
    "attachments": _set("attachments", [{"source": 3}]),
    "stardist_axes": _stardist,
}


def test_every_rule_has_a_breaking_case():
    assert set(BREAKS) == set(RULES)


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_an_rdf_that_breaks_a_rule_is_reported_with_the_code_that_throws(rule):
    rdf = copy.deepcopy(_readable())
    BREAKS[rule](rdf)
    problems = jdll_problems(rdf)
    assert rule in {r for r, _ in problems}, problems
    assert RULES[rule].where and RULES[rule].rule


def test_validate_row_names_the_reader_and_its_commit():
    from fijiport.package.report import Report
    from fijiport.verify.validate import deepimagej_reader_check

    report = Report("x", "Validation")
    deepimagej_reader_check(report, _readable())
    broken = fijiport_rdf()
    deepimagej_reader_check(report, broken)
    ok, bad = report.checks
    assert ok.name == bad.name == f"{READER} can read this rdf" and JDLL_COMMIT[:7] in ok.name
    assert ok.status == "passed" and bad.status == "warning"
    assert "documentation is {'source'" in bad.details and "ClassCastException" in bad.details and "NullPointerException" in bad.details
    assert "config.bioimageio.nickname" in bad.fix
