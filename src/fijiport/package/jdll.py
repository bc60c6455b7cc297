"""What deepImageJ 3.x really reads: the rules of JDLL's own rdf parser, and a check of an rdf against them.

deepImageJ 3.x does not use bioimageio.spec: it reads ``rdf.yaml`` with SnakeYAML (YAML 1.1) into plain maps and
builds its model description with JDLL's ``io.bioimage.modelrunner.bioimageio.description`` classes, which cast
fields to the Java type they expect and dereference some without a fallback. An rdf that bioimageio.spec accepts can
therefore make deepImageJ throw (a NullPointerException without ``config.bioimageio.nickname``, JDLL issue 53; a
ClassCastException for the ``documentation: {source: ...}`` form that bioimageio.spec 0.5.11+ writes).

:data:`RULES` lists every field that code dereferences without a fallback and the value forms it accepts, read from
JDLL at :data:`JDLL_COMMIT` (version :data:`JDLL_VERSION`; ModelDescriptorFactory, ModelDescriptor, ModelDescriptorV04/V05,
TensorSpecV04/V05, AxesV04/V05, AxisV05, AxisSize, Author, Cite, ExecutionConfig, deepimagej/DeepImageJExecutionConfig,
weights/ModelWeight, weights/TfWeights, stardist/ModelDescriptorStardistV05, and for ``covers`` and ``tags`` the model
list and search of JDLL's gui, which deepImageJ's dialog is built on). :func:`jdll_problems` checks an rdf, read as
YAML 1.1 as SnakeYAML reads it, against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

JDLL_VERSION = "0.6.4-SNAPSHOT"
JDLL_COMMIT = "98d3be2147830b9e93904880d50b6c40d8d3399f"
READER = f"deepImageJ 3.x (JDLL {JDLL_VERSION}, {JDLL_COMMIT[:7]})"
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class Rule:
    id: str
    rule: str
    """What the rdf must hold."""
    where: str
    """The JDLL code that needs it and what it throws otherwise."""


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "format_version",
            "format_version is a string starting with 0.4 or 0.5",
            "ModelDescriptorFactory.fromMap: IllegalArgumentException",
        ),
        Rule(
            "strings",
            "name, description, id, license, documentation, git_repo and type are strings when set (documentation is a file "
            "name, not the {source: ...} mapping bioimageio.spec 0.5.11+ writes)",
            "ModelDescriptor.buildModelDescription casts them with (String): ClassCastException",
        ),
        Rule(
            "timestamp",
            "timestamp, when the key is there, is not null",
            "ModelDescriptor.buildModelDescription calls toString(): NullPointerException",
        ),
        Rule(
            "nickname",
            "an rdf with a config block (spec 0.5) has config.bioimageio.nickname or id, a string",
            "ModelDescriptorV05's constructor calls modelID.length(): NullPointerException (JDLL issue 53)",
        ),
        Rule(
            "people",
            "authors, maintainers and packaged_by are lists whose entries' affiliation, email, github_user, name and orcid are strings",
            "ModelDescriptor.buildAuthors passes them to Author.build(String...): ClassCastException",
        ),
        Rule(
            "cite",
            "cite entries' text, doi and url are strings",
            "ModelDescriptor.buildCiteElements casts them with (String): ClassCastException",
        ),
        Rule(
            "covers",
            "covers is a list of file names (strings), or one",
            "the model list (gui.ModelSelectionPanel) opens getCovers().get(0) as a String: ClassCastException for {source: ...}",
        ),
        Rule("tags", "tags is a list (or one string)", "gui.SearchBar calls getTags().contains(...): NullPointerException without tags"),
        Rule(
            "tensors",
            "inputs and outputs are lists of mappings",
            "ModelDescriptorV05.calculateTotalInputHalo iterates the outputs: NullPointerException",
        ),
        Rule(
            "tensor",
            "every tensor has an id (or name) string and axes (spec 0.5: a list of mappings; 0.4: a string), a string "
            "description if any, and lists of mappings as pre-/postprocessing",
            "TensorSpecV05/TensorSpecV04: IllegalArgumentException or ClassCastException",
        ),
        Rule(
            "axis",
            "every axis (spec 0.5) has a type; space axes an id; channel axes channel_names (a list); concatenable is a "
            "boolean, scale and halo numbers, id and description strings",
            "AxisV05's constructor calls type.equals(...) and channelNames.size(): NullPointerException, or ClassCastException",
        ),
        Rule(
            "axis_size",
            "an axis size is an integer (not 64.0), or a mapping whose min, step and offset are numbers",
            "AxisSize casts a plain number with (int): ClassCastException for a float",
        ),
        Rule(
            "halo_reference",
            "an output axis with a halo and a size reference names an input tensor in size.tensor_id",
            "ModelDescriptorV05.calculateTotalInputHalo calls findInputTensor(ref).getAxesInfo(): NullPointerException",
        ),
        Rule(
            "shape_v04",
            "spec 0.4 tensors have a shape: a list, or for inputs a mapping with min and step, for outputs one with reference_tensor, scale and offset",
            "AxesV04: IllegalArgumentException",
        ),
        Rule("weights", "weights is a mapping of mappings", "ModelWeight.build calls keySet() and casts each entry to a Map"),
        Rule(
            "tf_version",
            "tensorflow_saved_model_bundle weights have a tensorflow_version (a string or number)",
            "TfWeights → SupportedVersions.findVersionInJSON(null): NullPointerException",
        ),
        Rule(
            "deepimagej",
            "config is a mapping; config.deepimagej, if there, a mapping whose pyramidal_model and allow_tiling are booleans "
            "(not null) and whose test_information and prediction are mappings",
            "ExecutionConfig / DeepImageJExecutionConfig.build cast them with (boolean) and (Map)",
        ),
        Rule(
            "attachments",
            "attachments (spec 0.5) is a list of file names or mappings whose source is a string",
            "ModelDescriptorV05.buildAttachments casts source with (String)",
        ),
        Rule(
            "stardist_axes",
            "a StarDist model (name with 'stardist' and a config.stardist block) has axes batch, x, y, channel (and z in 3D) "
            "in every input and output",
            "ModelDescriptorStardistV05.reverseAxesShape: RuntimeException \"Axis 'c' missing for StarDist\"",
        ),
    )
}


def _is_str(v: Any) -> TypeGuard[str]:
    return isinstance(v, str)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def jdll_problems(rdf: dict) -> list[tuple[str, str]]:
    """``(rule id, what is wrong where)`` for every rule of :data:`RULES` the rdf (plain data, read as YAML 1.1)
    breaks; empty when deepImageJ 3.x's reader takes it."""
    out: list[tuple[str, str]] = []

    def bad(rule: str, text: str) -> None:
        out.append((rule, text))

    fv = rdf.get("format_version")
    if not (_is_str(fv) and fv.startswith(("0.4", "0.5"))):
        bad("format_version", f"format_version is {_show(fv)}")
    v05 = _is_str(fv) and fv.startswith("0.5")
    for key in ("format_version", "name", "description", "id", "license", "documentation", "git_repo", "type"):
        if key in rdf and rdf[key] is not None and not _is_str(rdf[key]):
            bad("strings", f"{key} is {_show(rdf[key])}, not a string")
    if "timestamp" in rdf and rdf["timestamp"] is None:
        bad("timestamp", "timestamp is null")
    config = rdf.get("config")
    if config is not None and not isinstance(config, dict):
        bad("deepimagej", f"config is {_show(config)}, not a mapping")
        config = {}
    if v05 and isinstance(config, dict):
        bioimageio = config.get("bioimageio")
        nickname = bioimageio.get("nickname") if isinstance(bioimageio, dict) else None
        if nickname is not None and not _is_str(nickname):
            bad("nickname", f"config.bioimageio.nickname is {_show(nickname)}, not a string")
        elif nickname is None and not _is_str(rdf.get("id")):
            bad("nickname", "neither config.bioimageio.nickname nor id is set")
    for key in ("authors", "maintainers", "packaged_by"):
        people = rdf.get(key)
        for i, p in enumerate(people if isinstance(people, list) else []):
            for field in ("affiliation", "email", "github_user", "name", "orcid"):
                if isinstance(p, dict) and p.get(field) is not None and not _is_str(p[field]):
                    bad("people", f"{key}[{i}].{field} is {_show(p[field])}, not a string")
    cites = rdf.get("cite")
    for i, c in enumerate(cites if isinstance(cites, list) else []):
        for field in ("text", "doi", "url"):
            if isinstance(c, dict) and c.get(field) is not None and not _is_str(c[field]):
                bad("cite", f"cite[{i}].{field} is {_show(c[field])}, not a string")
    covers = rdf.get("covers")
    if covers is not None and not _is_str(covers):
        if not isinstance(covers, list):
            bad("covers", f"covers is {_show(covers)}")
        else:
            for i, c in enumerate(covers):
                if not _is_str(c):
                    bad("covers", f"covers[{i}] is {_show(c)}, not a file name")
    if not (isinstance(rdf.get("tags"), list) or _is_str(rdf.get("tags"))):
        bad("tags", f"tags is {_show(rdf.get('tags'))}")

    inputs, outputs = rdf.get("inputs"), rdf.get("outputs")
    for group, tensors in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(tensors, list) or not all(isinstance(t, dict) for t in tensors):
            bad("tensors", f"{group} is {_show(tensors)}, not a list of mappings")
    input_list = inputs if isinstance(inputs, list) else []
    input_ids = {t.get("id") if t.get("id") is not None else t.get("name") for t in input_list if isinstance(t, dict)}
    for group, tensors in (("inputs", inputs), ("outputs", outputs)):
        for ti, t in enumerate(tensors if isinstance(tensors, list) else []):
            if isinstance(t, dict):
                _check_tensor(bad, f"{group}[{ti}]", t, v05, group == "inputs", input_ids)
    if isinstance(config, dict) and _is_str(rdf.get("name")) and "stardist" in rdf["name"].lower() and config.get("stardist") is not None:
        for group, tensors in (("inputs", inputs), ("outputs", outputs)):
            for ti, t in enumerate(tensors if isinstance(tensors, list) else []):
                axes = t.get("axes") if isinstance(t, dict) else None
                letters = {_axis_letter(a) for a in (axes if isinstance(axes, list) else [])}
                need = {"b", "x", "y", "c"} | ({"z"} if "z" in letters else set())
                if missing := sorted(need - letters):
                    bad("stardist_axes", f"{group}[{ti}] has no {', '.join(missing)} axis")

    weights = rdf.get("weights")
    if not isinstance(weights, dict) or not all(e is None or isinstance(e, dict) for e in weights.values()):
        bad("weights", f"weights is {_show(weights)}")
    elif isinstance(weights.get("tensorflow_saved_model_bundle"), dict):
        version = weights["tensorflow_saved_model_bundle"].get("tensorflow_version")
        if not (_is_str(version) or _is_num(version)):
            bad("tf_version", f"tensorflow_saved_model_bundle.tensorflow_version is {_show(version)}")
    if isinstance(config, dict) and config.get("deepimagej") is not None:
        dij = config["deepimagej"]
        if not isinstance(dij, dict):
            bad("deepimagej", f"config.deepimagej is {_show(dij)}, not a mapping")
        else:
            for key in ("pyramidal_model", "allow_tiling"):
                if key in dij and not isinstance(dij[key], bool):
                    bad("deepimagej", f"config.deepimagej.{key} is {_show(dij[key])}, not true or false")
            for key in ("test_information", "prediction"):
                if dij.get(key) is not None and not isinstance(dij[key], dict):
                    bad("deepimagej", f"config.deepimagej.{key} is {_show(dij[key])}, not a mapping")
    attachments = rdf.get("attachments")
    if v05 and attachments is not None:
        if not isinstance(attachments, list):
            bad("attachments", f"attachments is {_show(attachments)}, not a list")
        else:
            for i, a in enumerate(attachments):
                if isinstance(a, dict) and "source" in a and not _is_str(a["source"]):
                    bad("attachments", f"attachments[{i}].source is {_show(a['source'])}")
    return out


def _axis_letter(a: Any) -> str:
    """JDLL's letter for an axis (AxisV05): b for batch, c for channel, else its id."""
    if not isinstance(a, dict):
        return ""
    if a.get("type") == "batch":
        return "b"
    if a.get("type") == "channel" or a.get("id") == "channel":
        return "c"
    return str(a.get("id"))


def _check_tensor(bad, where: str, t: dict, v05: bool, is_input: bool, input_ids: set) -> None:
    tid = t.get("id") if t.get("id") is not None else t.get("name")
    if not _is_str(tid):
        bad("tensor", f"{where} has no id (or name) string")
    if t.get("description") is not None and not _is_str(t["description"]):
        bad("tensor", f"{where}.description is {_show(t['description'])}")
    for key in ("preprocessing", "postprocessing"):
        steps = t.get(key)
        if steps is not None and not (isinstance(steps, list) and all(isinstance(s, dict) for s in steps)):
            bad("tensor", f"{where}.{key} is {_show(steps)}, not a list of mappings")
    axes = t.get("axes")
    if not v05:
        if not _is_str(axes):
            bad("tensor", f"{where}.axes is {_show(axes)}, not a string (spec 0.4)")
        shape = t.get("shape")
        fine = isinstance(shape, list) or (
            isinstance(shape, dict)
            and (all(k in shape for k in ("min", "step")) if is_input else all(k in shape for k in ("reference_tensor", "scale", "offset")))
        )
        if not fine:
            bad("shape_v04", f"{where}.shape is {_show(shape)}")
        return
    if not (isinstance(axes, list) and all(isinstance(a, dict) for a in axes)):
        bad("tensor", f"{where}.axes is {_show(axes)}, not a list of mappings")
        return
    for ai, a in enumerate(axes):
        at = f"{where}.axes[{ai}]"
        kind = a.get("type")
        if not _is_str(kind):
            bad("axis", f"{at} has no type")
        if a.get("id") is not None and not _is_str(a["id"]):
            bad("axis", f"{at}.id is {_show(a['id'])}")
        if kind == "space" and a.get("id") is None:
            bad("axis", f"{at} is a space axis without an id")
        if (kind == "channel" or a.get("id") == "channel") and not isinstance(a.get("channel_names"), list):
            bad("axis", f"{at} is a channel axis without channel_names")
        if a.get("concatenable") is not None and not isinstance(a["concatenable"], bool):
            bad("axis", f"{at}.concatenable is {_show(a['concatenable'])}")
        for key in ("scale", "halo"):
            if a.get(key) is not None and not _is_num(a[key]):
                bad("axis", f"{at}.{key} is {_show(a[key])}, not a number")
        if a.get("description") is not None and not _is_str(a["description"]):
            bad("axis", f"{at}.description is {_show(a['description'])}")
        size = a.get("size")
        if _is_num(size) and not (isinstance(size, int) and abs(size) <= INT_MAX):
            bad("axis_size", f"{at}.size is {_show(size)}, not an integer")
        elif isinstance(size, dict):
            for key in ("min", "step", "offset"):
                if size.get(key) is not None and not _is_num(size[key]):
                    bad("axis_size", f"{at}.size.{key} is {_show(size[key])}, not a number")
            ref = size.get("tensor_id")
            if not is_input and a.get("halo") and ref is not None and ref not in input_ids:
                bad("halo_reference", f"{at} has a halo, but its size refers to {_show(ref)}, which is no input tensor")
