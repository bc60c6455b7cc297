from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijiport.data.pairing import pair_images
from fijiport.data.split import split_names
from fijiport.errors import DataError


def _write(folder: Path, names, shape=(8, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        tifffile.imwrite(folder / n, np.zeros(shape, np.uint16))


def test_pairs_by_identical_name_and_lists_the_unpaired(tmp_path):
    _write(tmp_path / "low", ["a.tif", "b.tif", "only_low.tif"])
    _write(tmp_path / "GT", ["a.tif", "b.tif", "only_gt.tiff"])
    (tmp_path / "low" / "notes.txt").write_text("not an image")
    result = pair_images(tmp_path / "low", tmp_path / "GT")
    assert [p.name for p in result.pairs] == ["a.tif", "b.tif"]
    assert result.only_source == ["only_low.tif"]
    assert result.only_target == ["only_gt.tiff"]
    assert result.unpaired


@pytest.mark.parametrize("missing", ["low", "GT"], ids=["no-low-folder", "no-gt-folder"])
def test_missing_folder_is_named(tmp_path, missing):
    _write(tmp_path / ("GT" if missing == "low" else "low"), ["a.tif"])
    with pytest.raises(DataError, match=missing):
        pair_images(tmp_path / "low", tmp_path / "GT")


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "low").mkdir()
    _write(tmp_path / "GT", ["a.tif"])
    with pytest.raises(DataError, match="no .tif"):
        pair_images(tmp_path / "low", tmp_path / "GT")


NAMES = [f"img_{i:02d}.tif" for i in range(10)]


def test_split_is_reproducible_and_order_independent():
    a = split_names(NAMES, 0.3, seed=0)
    b = split_names(list(reversed(NAMES)), 0.3, seed=0)
    assert a == b
    train, test = a
    assert len(test) == 3 and len(train) == 7
    assert sorted(train + test) == NAMES and not set(train) & set(test)


def test_split_changes_with_seed():
    assert split_names(NAMES, 0.3, seed=0)[1] != split_names(NAMES, 0.3, seed=1)[1]


def test_adding_an_image_does_not_reshuffle_the_others():
    _, test_before = split_names(NAMES, 0.3, seed=0)
    _, test_after = split_names(NAMES + ["zz_new.tif"], 0.3, seed=0)
    assert len(set(test_before) - set(test_after)) <= 1


@pytest.mark.parametrize(
    "n,fraction,n_test",
    [(1, 0.3, 0), (2, 0.3, 1), (2, 0.0, 0), (3, 0.9, 2), (10, 0.25, 2)],
    ids=["single-image-stays-in-train", "two-images-one-test", "no-test-wanted", "train-keeps-one", "rounding"],
)
def test_split_sizes(n, fraction, n_test):
    train, test = split_names([f"{i}.tif" for i in range(n)], fraction, seed=0)
    assert len(test) == n_test and len(train) == n - n_test
