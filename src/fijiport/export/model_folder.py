"""Reading csbdeep model folders (``config.json`` + ``weights_*.h5``), trained by fijiport or not."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import ConfigError, DataError
from ..files import check_hdf5

log = logging.getLogger(__name__)

DEFAULT_PERCENTILES = (2.0, 99.8)
"""csbdeep's ``PercentileNormalizer`` default, for model folders that do not record theirs."""


@dataclass
class CareModelFolder:
    """What export needs to know about a CARE model folder."""

    path: Path
    config: dict[str, Any]
    weights_path: Path
    percentiles: tuple[float, float]
    percentiles_source: str
    training_record: Optional[dict[str, Any]]

    @property
    def axes(self) -> str:
        """Network axes with channel last, e.g. ``YXC`` or ``ZYXC``."""
        axes = str(self.config["axes"]).upper()
        return axes if "C" in axes else axes + "C"

    @property
    def spatial_axes(self) -> str:
        return "".join(a for a in self.axes if a in "ZYX")

    @property
    def n_channel_in(self) -> int:
        return int(self.config.get("n_channel_in", 1))

    @property
    def n_channel_out(self) -> int:
        return int(self.config.get("n_channel_out", 1))

    @property
    def probabilistic(self) -> bool:
        return bool(self.config.get("probabilistic", False))

    @property
    def depth(self) -> int:
        return int(self.config.get("unet_n_depth", 2))

    @property
    def div_by(self) -> int:
        return 2**self.depth

    @property
    def kernel_size(self) -> int:
        return int(self.config.get("unet_kern_size", 5 if len(self.spatial_axes) == 2 else 3))

    @property
    def name(self) -> str:
        return self.path.name


def read_care_model_folder(model_dir: Path, weights: Optional[str] = None,
                           percentiles: Optional[tuple[float, float]] = None) -> CareModelFolder:
    """Check and describe a csbdeep CARE model folder; raise with the fix when something is missing."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        raise DataError(f"{model_dir} is a file; pass the model folder that holds config.json and weights_best.h5")
    if not model_dir.is_dir():
        raise DataError(f"model folder {model_dir} does not exist")
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"{model_dir} has no config.json; pass the folder csbdeep created when training (it holds config.json and weights_best.h5)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{cfg_path} is not valid JSON ({e}); copy the model folder again from where it was trained") from None
    if not isinstance(config, dict) or "axes" not in config:
        raise ConfigError(f"{cfg_path} is not a csbdeep model config (no 'axes' key)")
    if "n_rays" in config:
        raise ConfigError(f"{model_dir} is a StarDist model (config has n_rays); use fijiport.export.stardist.export_stardist "
                          "(the CLI picks it by itself)")
    missing = [k for k in ("n_dim", "unet_n_depth", "n_channel_in", "n_channel_out") if k not in config]
    if missing:
        raise ConfigError(f"{cfg_path} lacks {', '.join(missing)}; is this a csbdeep CARE model folder?")
    if weights is None:
        candidates = ["weights_best.h5", "weights_last.h5", "weights_now.h5"]
        found = [c for c in candidates if (model_dir / c).is_file()]
        if not found:
            raise DataError(f"{model_dir} has no weights ({', '.join(candidates)}); copy weights_best.h5 from where the model was "
                            "trained into this folder (fijiport export also takes another .h5 with --weights FILE.h5)")
        weights_path = model_dir / found[0]
    else:
        weights_path = model_dir / weights if not Path(weights).is_absolute() else Path(weights)
        if not weights_path.is_file():
            raise DataError(f"weights file {weights_path} does not exist")
    check_hdf5(weights_path)

    record = None
    record_path = model_dir / "fijiport_training.json"
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError:
            log.warning("%s is not valid JSON; ignoring it", record_path)
    if percentiles is not None:
        pct, source = (float(percentiles[0]), float(percentiles[1])), "given"
    else:
        pct, source = _recorded_percentiles(model_dir)
    return CareModelFolder(model_dir, config, weights_path, pct, source, record)


def _recorded_percentiles(model_dir: Path) -> tuple[tuple[float, float], str]:
    cfg_path = model_dir / "fijiport_config.yaml"
    if cfg_path.is_file():
        try:
            cfg = yaml.safe_load(cfg_path.read_text()) or {}
            return (float(cfg["percentile_low"]), float(cfg["percentile_high"])), "training"
        except (KeyError, TypeError, ValueError, yaml.YAMLError):
            log.warning("%s does not record the normalisation percentiles", cfg_path)
    log.warning(
        "%s does not record its normalisation percentiles; using csbdeep's default %s/%s (if training used others, export with --percentiles LOW,HIGH)",
        model_dir, *DEFAULT_PERCENTILES,
    )
    return DEFAULT_PERCENTILES, "csbdeep default"


def load_care_keras(folder: CareModelFolder):
    """Build the csbdeep CARE network (Keras 2) and load the folder's weights."""
    from .._tf import legacy_tensorflow, quiet_stdout

    legacy_tensorflow()
    from csbdeep.models import CARE

    try:
        with quiet_stdout():
            model = CARE(None, name=folder.path.name, basedir=str(folder.path.parent))
            model.keras_model.load_weights(str(folder.weights_path))
    except Exception as e:
        raise DataError(f"cannot load {folder.weights_path} into the network described by {folder.path / 'config.json'}: "
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. The file is damaged or belongs to "
                        "another network: copy the model folder again, whole, from where it was trained") from None
    return model
