"""Pairing two folders of acquisitions by identical file name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..files import list_tiffs


@dataclass(frozen=True)
class ImagePair:
    name: str
    source: Path
    target: Path


@dataclass
class PairingResult:
    pairs: list[ImagePair]
    only_source: list[str] = field(default_factory=list)
    only_target: list[str] = field(default_factory=list)

    @property
    def unpaired(self) -> bool:
        return bool(self.only_source or self.only_target)


def pair_images(source_dir: Path, target_dir: Path, *, source_label: str = "low", target_label: str = "GT") -> PairingResult:
    """Pair the TIFFs of two folders by identical file name (case-sensitive, extension included)."""
    source_files = {p.name: p for p in list_tiffs(source_dir, what=f"{source_label} folder")}
    target_files = {p.name: p for p in list_tiffs(target_dir, what=f"{target_label} folder")}
    if not source_files:
        raise DataError(
            f"{source_label} folder {source_dir} holds no .tif/.tiff files; put the images there "
            f"(Fiji: File > Save As > Tiff...) or point {source_label} at the folder that holds them"
        )
    if not target_files:
        raise DataError(
            f"{target_label} folder {target_dir} holds no .tif/.tiff files; put the images there "
            f"(Fiji: File > Save As > Tiff...) or point {target_label} at the folder that holds them"
        )
    common = sorted(source_files.keys() & target_files.keys())
    return PairingResult(
        pairs=[ImagePair(n, source_files[n], target_files[n]) for n in common],
        only_source=sorted(source_files.keys() - target_files.keys()),
        only_target=sorted(target_files.keys() - source_files.keys()),
    )
