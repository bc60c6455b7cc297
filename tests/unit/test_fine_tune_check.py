"""The compatibility check of ``--init-from`` on library configs as csbdeep and stardist write them: what differs is
named with both values and the fix; where only the output head differs, the message says so (docs/bad_inputs.md,
"Fine-tuning"). The same check on real trained parents: ``e2e/test_fine_tune.py``."""

from __future__ import annotations

import pytest

from fijiport.errors import ConfigError
from fijiport.kinds import CARE, STARDIST
from fijiport.kinds.base import check_fine_tune, fine_tune_differences

CARE_2D = {"n_dim": 2, "axes": "YXC", "n_channel_in": 1, "n_channel_out": 1, "probabilistic": False, "unet_n_depth": 2,
           "unet_kern_size": 5, "unet_n_first": 32, "unet_residual": True}  # fmt: skip
STARDIST_2D = {"n_dim": 2, "axes": "YXC", "n_channel_in": 1, "n_channel_out": 33, "n_rays": 32, "grid": [2, 2], "backbone": "unet",
               "n_classes": None, "unet_n_depth": 3, "unet_kernel_size": [3, 3], "unet_n_filter_base": 32}  # fmt: skip


def message(kind, parent, child, given=()) -> str:
    with pytest.raises(ConfigError) as e:
        check_fine_tune(kind, parent, child, parent_name="PARENT", given=set(given))
    return str(e.value)


def test_a_parent_with_the_same_network_fits():
    check_fine_tune(CARE, CARE_2D, dict(CARE_2D), parent_name="PARENT")
    # lists (config.json) and tuples (the config a training builds) are the same setting
    check_fine_tune(STARDIST, STARDIST_2D, {**STARDIST_2D, "grid": (2, 2), "unet_kernel_size": (3, 3)}, parent_name="PARENT")


def test_keys_an_older_config_lacks_count_as_the_librarys_defaults():
    older = {k: v for k, v in CARE_2D.items() if k not in ("unet_kern_size", "probabilistic")}
    assert fine_tune_differences(CARE, older, CARE_2D) == []
    older_3d = {**older, "n_dim": 3, "axes": "ZYXC"}  # csbdeep's default kernel: 5 in 2D, 3 in 3D
    assert fine_tune_differences(CARE, older_3d, {**CARE_2D, "n_dim": 3, "unet_kern_size": 3}) == []


def test_only_a_different_head_is_said_to_be_the_head():
    text = message(CARE, {**CARE_2D, "n_channel_out": 2, "unet_residual": False}, CARE_2D)
    assert text.startswith("only the output head differs between PARENT and this training: output channels (parent 2, 1 here)")
    assert "as many output channels as input channels" in text
    text = message(CARE, CARE_2D, {**CARE_2D, "probabilistic": True}, given={"probabilistic"})
    assert "only the output head differs" in text and "probabilistic output (parent no, --probabilistic yes)" in text
    text = message(STARDIST, {**STARDIST_2D, "n_classes": 3}, STARDIST_2D)
    assert "only the output head differs" in text and "object classes (parent 3, none here)" in text


def test_the_body_and_the_head_differing_is_a_network_that_differs():
    text = message(STARDIST, STARDIST_2D, {**STARDIST_2D, "n_rays": 64, "unet_n_depth": 2}, given={"n_rays", "unet_depth"})
    assert text.startswith("PARENT cannot start this training, its network differs: rays (parent 32, --n-rays 64); U-Net depth")
    assert "drop --n-rays (fine-tuning takes the parent's 32); drop --unet-depth (fine-tuning takes the parent's 3)" in text


def test_settings_the_data_decides_say_how_to_prepare_the_data():
    text = message(STARDIST, STARDIST_2D, {**STARDIST_2D, "n_channel_in": 3})
    assert "input channels (parent 1, 3 here)" in text and "Split Channels" in text


N2V_2D = {"n_dim": 2, "axes": "YXC", "n_channel_in": 1, "n_channel_out": 1, "means": ["10.0"], "stds": ["2.0"], "unet_n_depth": 2,
          "unet_kern_size": 3, "unet_n_first": 32, "batch_norm": True, "single_net_per_channel": False}  # fmt: skip


def test_n2v_per_channel_networks_fit_one_channel_and_are_refused_for_several():
    """n2v's default (one network per channel, fed through a Lambda slice that holds no weights) is one network when
    there is one channel; with two, n2v 0.3.3's nets all see the last channel and fijiport trains one net for all."""
    from fijiport.kinds import N2V

    check_fine_tune(N2V, {**N2V_2D, "single_net_per_channel": True}, N2V_2D, parent_name="PARENT")
    two = {**N2V_2D, "n_channel_in": 2, "means": ["1", "2"], "stds": ["1", "1"]}
    text = message(N2V, {**two, "single_net_per_channel": True}, two)
    assert "one network per channel (parent yes, no here)" in text and "train from scratch" in text
    # n2v's own default kernel (5 in 2D) where an older config.json lacks the key
    text = message(N2V, {k: v for k, v in N2V_2D.items() if k != "unet_kern_size"}, N2V_2D, given={"unet_kernel_size"})
    assert "kernel size (parent 5, --unet-kernel-size 3)" in text and "drop --unet-kernel-size" in text
    text = message(N2V, N2V_2D, {**N2V_2D, "batch_norm": False}, given={"batch_norm"})
    assert "batch normalisation (parent yes, --batch-norm no)" in text
