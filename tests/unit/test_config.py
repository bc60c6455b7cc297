import pytest

from fijiport.config import CareTrainConfig, load_yaml_config, merge_options
from fijiport.config.loading import validate_config
from fijiport.errors import ConfigError


@pytest.mark.parametrize(
    "values,message",
    [
        ({"patch_size": [64, 64]}, None),
        ({"patch_size": [62, 64]}, r"divisible by 4 .*try \[60, 64\]"),
        ({"patch_size": [64, 64], "unet_depth": 3}, None),
        ({"patch_size": [36, 64], "unet_depth": 3}, r"divisible by 8 .*try \[32, 64\]"),
        ({"axes": "ZYX", "patch_size": [64, 64]}, "has 2 values but axes 'ZYX' have 3 spatial axes"),
        ({"unet_kernel_size": 4}, "must be odd.*try 5"),
        ({"percentile_low": 99.9, "percentile_high": 99.8}, "must be below"),
        ({"loss": "laplace"}, "needs --probabilistic"),
        ({"probabilistic": True, "loss": "mae"}, "needs loss 'laplace'"),
        ({"axes": "TYX"}, None),
        ({"axes": "SYX"}, "T \\(frames of a time-lapse\\), Z, Y, X and C"),
        ({"epochs": 0}, "epochs"),
        ({"epoch": 3}, "unknown option"),
    ],
    ids=[
        "patch-ok",
        "patch-not-divisible",
        "depth3-ok",
        "depth3-not-divisible",
        "patch-dims-vs-axes",
        "even-kernel",
        "percentiles-order",
        "laplace-needs-prob",
        "prob-needs-laplace",
        "time-axis-ok",
        "sample-axis",
        "zero-epochs",
        "typo",
    ],
)
def test_care_config_validation(values, message):
    if message is None:
        validate_config(CareTrainConfig, values, source="test")
    else:
        with pytest.raises(ConfigError, match=message):
            validate_config(CareTrainConfig, values, source="test")


def test_yaml_values_are_overridden_by_given_options(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 50\nbatch-size: 8\nlearning_rate: 0.001\n")
    cfg = merge_options(CareTrainConfig, load_yaml_config(path), {"epochs": 3, "batch_size": None})
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate) == (3, 8, 0.001)


@pytest.mark.parametrize(
    "text,message",
    [("[1, 2]", "mapping"), ("a: [", "not valid YAML"), ("!!python/object/apply:os.system ['true']", "not valid YAML")],
    ids=["list", "broken", "object-constructing-tag"],
)
def test_bad_yaml_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml_config(path)


def test_probabilistic_resolves_laplace():
    assert CareTrainConfig(probabilistic=True).resolved_loss == "laplace"
    assert CareTrainConfig().resolved_loss == "mae"
    assert CareTrainConfig().kernel_size_for(2) == 5 and CareTrainConfig().kernel_size_for(3) == 3


@pytest.mark.parametrize(
    "values,message",
    [
        ({"patch_size": [128, 128]}, None),
        ({"patch_size": [100, 128]}, r"divisible by 8"),
        ({"grid": [2, 2], "patch_size": [100, 128]}, r"divisible by 16 .*try \[96, 128\]"),
        ({"grid": [3, 2]}, "powers of 2"),
        ({"axes": "ZYX", "grid": [2, 2]}, "has 2 values but axes 'ZYX' have 3"),
        ({"unet_kernel_size": 4}, "must be odd"),
    ],
    ids=["ok", "patch-not-divisible", "grid-times-depth", "grid-not-power-of-2", "grid-dims", "even-kernel"],
)
def test_stardist_config_validation(values, message):
    from fijiport.config import StardistTrainConfig

    if message is None:
        validate_config(StardistTrainConfig, values, source="test")
    else:
        with pytest.raises(ConfigError, match=message):
            validate_config(StardistTrainConfig, values, source="test")


@pytest.mark.parametrize(
    "given,stored",
    [("1.0.0", "1.0.0"), ("v1", "1"), (" 2.1 ", "2.1"), ("1.0-beta", "1.0b0"), (3, "3")],
    ids=["semver", "v-prefix", "spaces", "pre-release", "yaml-int"],
)
def test_export_version_is_stored_as_the_spec_reads_it(given, stored):
    """Issue 21: --version v1 was written as "v1" into the rdf while zoo-check (bioimageio.spec) showed "1"."""
    from bioimageio.spec.model.v0_5 import Version

    from fijiport.config.export import ExportMeta

    meta = validate_config(ExportMeta, {"version": given}, source="metadata")
    assert meta.version == stored == str(Version(str(given).strip()))


@pytest.mark.parametrize(
    "given,message",
    [("first", r"'first' is not a version number .*try 1\.0\.0"), (1.1, "quote it, e.g. version: '1.1'")],
    ids=["not-a-version", "yaml-float"],
)
def test_export_version_that_is_no_version_is_refused(given, message):
    from fijiport.config.export import ExportMeta

    with pytest.raises(ConfigError, match=message):
        validate_config(ExportMeta, {"version": given}, source="metadata")
