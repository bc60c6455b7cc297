"""Which low file goes with which GT file: by identical name, by what the names mean, or as a list says.

Three ways, one result (:class:`PairingResult`):

- **identical names** (the default): ``low/a.tif`` with ``GT/a.tif``; with ``recursive``, identical paths below the
  two folders (``low/day1/pos2/a.tif`` with ``GT/day1/pos2/a.tif``);
- **what the names mean** (``pair_by``, a regular expression with named groups): the groups a file's path matches
  form its key, and a low file pairs with the GT file of the same key. Microscopes write names such as
  ``488-20_560-10_her_CamA_ch0_stack0000_488nm_0000000msec_002277875msecAbs_01x_01y_01z_00000.tif`` where low and
  GT differ by the laser power and the time stamps; ``_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)_.*_(?P<x>\\d+)x_
  (?P<y>\\d+)y_(?P<z>\\d+)z_`` pairs them by channel, stack and position and ignores the rest. The expression is
  searched in the path relative to ``--low`` / ``--gt`` (``/`` between folders), so folder names can be part of
  the key too;
- **a list** (``pairs_file``, a CSV of ``low,gt`` rows, paths relative to the CSV's folder or absolute).

A key (or a file of the list) that stands for two files is refused naming them: one of the two would silently be
dropped, or the same field would land in training and test.

The data folder names each pair after its low file's path below ``--low`` (or below the folder all listed low files
share), flattened with ``__`` between folders (:func:`flat_names`), so names stay unique across nested folders and the
same files always get the same names (the split hashes them).
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from ..config.data import compile_pair_by
from ..errors import ConfigError, DataError
from ..files import list_tiffs

SHOWN = 8
"""Files named in one refusal at most (``--dry-run`` lists them all)."""
MAX_NAME_BYTES = 200
"""Flattened names longer than this keep their end, behind a hash of the whole path (file systems allow 255)."""


@dataclass(frozen=True)
class ImagePair:
    name: str
    """The pair's file name in the data folder (the same under low/ and GT/)."""
    source: Path
    target: Path
    key: Optional[dict[str, str]] = field(default=None, hash=False, compare=False)
    """With ``pair_by``: the named groups the two files matched."""
    sources: tuple[Path, ...] = ()
    """With ``channels``: one low file per channel, in the order of ``channels`` (``source`` is the first)."""
    targets: tuple[Path, ...] = ()

    @property
    def joined(self) -> bool:
        """Whether the pair's images are channels in separate files, joined into one image per side."""
        return bool(self.sources)


@dataclass(frozen=True)
class Ambiguity:
    """A key (or, in a pairs list, a file) that stands for several files of one side."""

    side: str
    """The option the files came from (``--low``, ``--gt``, or the pairs file's column)."""
    key: str
    """The key (``channel=0 stack=0000``), or in a pairs file the file listed more than once."""
    files: list[str]
    """The files of the key (relative paths), or the rows that list the same file (``row 2``)."""

    def headline(self) -> str:
        """What is ambiguous, without the files."""
        if self.files and self.files[0].startswith("row "):
            return f"{self.side} lists {self.key} in {len(self.files)} rows"
        return f"key {self.key} matches {len(self.files)} files in {self.side}"

    def describe(self) -> str:
        if self.files and self.files[0].startswith("row "):
            return f"{self.headline()} ({', '.join(self.files)})"
        return f"{self.headline()}: {names_shown(self.files)}"


@dataclass
class PairingResult:
    pairs: list[ImagePair]
    only_source: list[str] = field(default_factory=list)
    only_target: list[str] = field(default_factory=list)
    unmatched_source: list[str] = field(default_factory=list)
    """With ``pair_by``: low files whose path the expression does not match."""
    unmatched_target: list[str] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    source_label: str = "low"
    target_label: str = "GT"
    how: str = "identical file name"
    """How the files were paired, as the messages say it."""
    examples: list[str] = field(default_factory=list)
    """With ``pair_by``: the key of each side's first file, to show why no key occurs on both sides."""
    incomplete: list[str] = field(default_factory=list)
    """With ``channels``: files whose other channels (of ``channels``) are not all there, on either side."""
    other_channels: list[str] = field(default_factory=list)
    """With ``channels``: files of a channel value ``channels`` does not list (left out, not an error)."""

    @property
    def unpaired(self) -> bool:
        return bool(self.only_source or self.only_target or self.unmatched_source or self.unmatched_target or self.incomplete)

    @property
    def skipped(self) -> list[str]:
        """Every file left out: unpaired, not matching the expression, without all its channels, of another channel."""
        return self.only_source + self.only_target + self.unmatched_source + self.unmatched_target + self.incomplete + self.other_channels

    def refusal(self, allow_unpaired: bool) -> Optional[str]:
        """Why this pairing cannot make a data folder (one line naming the files and the fix), or None."""
        if self.ambiguous:
            parts = [a.describe() for a in self.ambiguous[:3]]
            more = f" (and {len(self.ambiguous) - 3} more keys)" if len(self.ambiguous) > 3 else ""
            fix = (
                "give each low and GT file one row"
                if self.how == "pairs file"
                else "add the part of the name that tells them apart to --pair-by as a named group (e.g. (?P<time>\\d+)msec), "
                "or move the extra files out"
            )
            return f"ambiguous pairing by {self.how}: " + "; ".join(parts) + more + f". {fix}; --dry-run lists every pair and key"
        if not self.pairs:
            if self.examples:
                return f"no pair found by {self.how}: no key occurs on both sides (" + "; ".join(self.examples) + "); correct --pair-by"
            return (
                f"no pair found by {self.how}: {self.source_label} holds {names_shown(self.only_source) or 'no TIFF'}, "
                f"{self.target_label} holds {names_shown(self.only_target) or 'no TIFF'}; give low and GT the same names, or pair "
                "them by what the names mean with --pair-by or a --pairs list"
            )
        if self.unpaired and not allow_unpaired:
            parts = []
            if self.only_source:
                parts.append(f"only in {self.source_label}: {names_shown(self.only_source)}")
            if self.only_target:
                parts.append(f"only in {self.target_label}: {names_shown(self.only_target)}")
            if self.unmatched_source or self.unmatched_target:
                parts.append(f"not matched by --pair-by: {names_shown(self.unmatched_source + self.unmatched_target)}")
            if self.incomplete:
                parts.append(f"without every channel of --channels: {names_shown(self.incomplete)}")
            fix = "correct --pair-by" if self.how != "identical file name" else "rename them to match"
            return (
                f"unpaired files (low and GT are paired by {self.how}): " + "; ".join(parts) + f". {fix[0].upper() + fix[1:]}, "
                "remove them, or pass --allow-unpaired to skip them; --dry-run lists every pair"
            )
        return None


def names_shown(files: list[str]) -> str:
    """The first :data:`SHOWN` of ``files``, and how many more, as one refusal names them."""
    shown = ", ".join(files[:SHOWN])
    return shown + (f" and {len(files) - SHOWN} more" if len(files) > SHOWN else "")


def pair_images(source_dir: Path, target_dir: Path, *, source_label: str = "low", target_label: str = "GT") -> PairingResult:
    """Pair the TIFFs of two folders by identical file name (case-sensitive, extension included)."""
    return pair_acquisitions(source_dir, target_dir, source_label=source_label, target_label=target_label)


def pair_acquisitions(
    source_dir: Optional[Path],
    target_dir: Optional[Path],
    *,
    pair_by: Optional[str] = None,
    recursive: bool = False,
    pairs_file: Optional[Path] = None,
    channels: Optional[list[str]] = None,
    gt_channels: Optional[list[str]] = None,
    source_label: str = "--low",
    target_label: str = "--gt",
) -> PairingResult:
    """Pair low and GT files (see the module's docstring); nothing is refused here: :meth:`PairingResult.refusal` says
    what a data folder cannot be made of, and ``--dry-run`` shows the whole result.

    Parameters
    ----------
    source_dir, target_dir
        The low and GT folders (unused with ``pairs_file``).
    pair_by
        A regular expression with named groups: files pair when their groups agree.
    recursive
        Take the files of sub-folders too, at any depth.
    pairs_file
        A CSV of ``low,gt`` rows instead of the folders.
    channels
        With ``pair_by`` (whose group ``channel`` tells a file's channel): the channel values whose files are joined,
        in this order, into one image per side; the other groups form the pair key (:func:`_pair_channels`).
    gt_channels
        With ``channels``: the channel values of the GT side, when they are not ``channels``.

    Returns
    -------
    PairingResult
        The pairs, named for the data folder, and every file that found no partner or more than one.
    """
    if pairs_file is not None:
        return _pairs_from_file(Path(pairs_file))
    if source_dir is None or target_dir is None:
        raise ConfigError("give --low and --gt folders, or a --pairs file of low,gt rows")
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    sources = _listed(source_dir, source_label, recursive)
    targets = _listed(target_dir, target_label, recursive)
    if pair_by is None:
        src = {_rel(p, source_dir): p for p in sources}
        tgt = {_rel(p, target_dir): p for p in targets}
        common = sorted(src.keys() & tgt.keys(), key=_order)
        names = flat_names(common)
        return PairingResult(
            pairs=[ImagePair(names[r], src[r], tgt[r]) for r in common],
            only_source=sorted(src.keys() - tgt.keys(), key=_order),
            only_target=sorted(tgt.keys() - src.keys(), key=_order),
            source_label=str(source_dir),
            target_label=str(target_dir),
            how="identical path below the folders" if recursive else "identical file name",
        )
    regex = compile_pair_by(pair_by)
    result = PairingResult(pairs=[], source_label=str(source_dir), target_label=str(target_dir), how=f"--pair-by {pair_by!r}")
    if channels:
        return _pair_channels(
            regex, (channels, gt_channels or channels), (sources, source_dir, source_label), (targets, target_dir, target_label), result
        )
    keyed: list[dict[tuple, list[str]]] = []
    groups: dict[tuple, dict[str, str]] = {}
    for files, root, unmatched in ((sources, source_dir, result.unmatched_source), (targets, target_dir, result.unmatched_target)):
        by_key: dict[tuple, list[str]] = {}
        for p in files:
            rel = _rel(p, root)
            m = regex.search(rel)
            if m is None:
                unmatched.append(rel)
                continue
            values = {k: v or "" for k, v in m.groupdict().items()}
            key = tuple(values.items())
            groups[key] = values
            by_key.setdefault(key, []).append(rel)
        if by_key:
            first = next(iter(by_key.values()))[0]
            result.examples.append(f"{root}: {first} gives {describe_key(groups[next(iter(by_key))])}")
        keyed.append(by_key)
    src_keys, tgt_keys = keyed
    for label, by_key in ((source_label, src_keys), (target_label, tgt_keys)):
        result.ambiguous += [Ambiguity(label, describe_key(groups[k]), files) for k, files in by_key.items() if len(files) > 1]
    common = sorted(src_keys.keys() & tgt_keys.keys(), key=lambda k: _order(src_keys[k][0]))
    names = flat_names([src_keys[k][0] for k in common])
    result.pairs = [
        ImagePair(names[src_keys[k][0]], source_dir / src_keys[k][0], target_dir / tgt_keys[k][0], key=groups[k])
        for k in common
        if len(src_keys[k]) == 1 and len(tgt_keys[k]) == 1
    ]
    result.only_source = sorted((f for k in src_keys.keys() - tgt_keys.keys() for f in src_keys[k]), key=_order)
    result.only_target = sorted((f for k in tgt_keys.keys() - src_keys.keys() for f in tgt_keys[k]), key=_order)
    return result


def _pair_channels(
    regex: re.Pattern[str],
    channels: tuple[list[str], list[str]],
    low: tuple[list[Path], Path, str],
    gt: tuple[list[Path], Path, str],
    result: PairingResult,
) -> PairingResult:
    """Pair by the groups other than ``channel``, each side's image joined from one file per listed channel.

    ``channels`` are the low side's and the GT side's channel values (the same, unless ``--gt-channels``). A key pairs
    when both sides hold exactly one file of each of their channels; its files in that order become the pair's
    ``sources`` / ``targets``. A file of a channel not listed is left out (noted in
    ``other_channels``); a key that lacks a listed channel on a side leaves its files ``incomplete``; two files of one
    key and channel are an :class:`Ambiguity`. The pair is named after its first channel's low file, the channel
    value written as all of them joined by ``+`` (:meth:`ChannelFiles.joined_name`).
    """
    sides: list[ChannelFiles] = []
    for (files, root, label), unmatched, wanted in (
        (low, result.unmatched_source, channels[0]),
        (gt, result.unmatched_target, channels[1]),
    ):
        side = group_by_channel([_rel(p, root) for p in files], regex, wanted)
        unmatched += side.unmatched
        result.other_channels += side.other
        if side.images:
            key, chans = next(iter(side.images.items()))
            result.examples.append(f"{root}: {next(iter(chans.values()))[0]} gives {describe_key(dict(key))}")
        for key, chans in side.images.items():
            result.ambiguous += [
                Ambiguity(label, describe_key({**dict(key), "channel": c}), rels) for c, rels in chans.items() if len(rels) > 1
            ]
        sides.append(side)
    low_keys, gt_keys = sides[0].images, sides[1].images

    def complete(chans: dict[str, list[str]], wanted: list[str]) -> bool:
        return all(len(chans.get(c, ())) == 1 for c in wanted)

    common = sorted(low_keys.keys() & gt_keys.keys(), key=lambda k: _order(min(f for fs in low_keys[k].values() for f in fs)))
    paired = [k for k in common if complete(low_keys[k], channels[0]) and complete(gt_keys[k], channels[1])]
    both = low_keys.keys() & gt_keys.keys()
    for by_key, only in ((low_keys, result.only_source), (gt_keys, result.only_target)):
        only += sorted((f for k in by_key.keys() - both for fs in by_key[k].values() for f in fs), key=_order)
    for k in both - set(paired):
        chans = (low_keys[k], gt_keys[k])
        if all(len(fs) == 1 for side in chans for fs in side.values()):  # else two files of one channel: ambiguous
            result.incomplete += [f for side in chans for fs in side.values() for f in fs]
    result.incomplete.sort(key=_order)

    firsts = {k: low_keys[k][channels[0][0]][0] for k in paired}
    names = flat_names([sides[0].joined_name(r) for r in firsts.values()])
    result.pairs = [
        ImagePair(
            names[sides[0].joined_name(firsts[k])],
            low[1] / firsts[k],
            gt[1] / gt_keys[k][channels[1][0]][0],
            key=dict(k),
            sources=tuple(low[1] / low_keys[k][c][0] for c in channels[0]),
            targets=tuple(gt[1] / gt_keys[k][c][0] for c in channels[1]),
        )
        for k in paired
    ]
    return result


@dataclass
class ChannelFiles:
    """Files grouped into images by ``--pair-by``'s named groups other than ``channel`` (:func:`group_by_channel`)."""

    channels: list[str]
    images: dict[tuple, dict[str, list[str]]] = field(default_factory=dict)
    """Per key (the other groups' ``(name, value)`` pairs; ``dict(key)`` gives them back), per listed channel value,
    the files (paths relative to their folder) in the order given."""
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Where each grouped file's path holds its channel value."""
    unmatched: list[str] = field(default_factory=list)
    """Files the expression does not match (their channel is unknown)."""
    other: list[str] = field(default_factory=list)
    """Files of a channel value ``channels`` does not list."""

    def joined_name(self, rel: str) -> str:
        """The path of the image joined from ``rel``'s channels: its channel value written as all of them joined by
        ``+`` (``a_ch0_s1.tif`` → ``a_ch0+1_s1.tif``)."""
        start, end = self.spans[rel]
        return rel[:start] + "+".join(self.channels) + rel[end:]


def group_by_channel(rels: list[str], regex: re.Pattern[str], channels: list[str]) -> ChannelFiles:
    """Group files recorded one channel per file into images: the expression's group ``channel`` tells a file's
    channel, its other named groups the image (what ``prepare care --channels`` pairs and ``predict --channels``
    joins). Judges nothing: missing channels and two files of one channel are the callers' to refuse."""
    out = ChannelFiles(list(channels))
    for rel in rels:
        m = regex.search(rel)
        if m is None:
            out.unmatched.append(rel)
            continue
        values = {k: v or "" for k, v in m.groupdict().items()}
        channel = values.pop("channel")
        if channel not in channels:
            out.other.append(rel)
            continue
        out.spans[rel] = m.span("channel")
        out.images.setdefault(tuple(values.items()), {}).setdefault(channel, []).append(rel)
    return out


def describe_key(values: dict[str, str]) -> str:
    """A key as the messages write it: ``channel=0 stack=0000``."""
    return " ".join(f"{k}={v}" for k, v in values.items())


def _listed(folder: Path, label: str, recursive: bool) -> list[Path]:
    files = list_tiffs(folder, what=f"{label} folder", recursive=recursive)
    if not files:
        deeper = not recursive and any(Path(folder).glob("*/**/*.tif*"))
        raise DataError(
            f"{label} folder {folder} holds no .tif/.tiff files"
            + ("; its sub-folders do: pass --recursive to take them" if deeper else "")
            + f"; put the images there (Fiji: File > Save As > Tiff...) or point {label} at the folder that holds them"
        )
    return files


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _order(rel: str) -> tuple[str, ...]:
    return PurePosixPath(rel).parts


def flat_names(relative: list[str]) -> dict[str, str]:
    """Unique file names for paths below one folder: folders joined by ``__`` (``day1/pos2/a.tif`` →
    ``day1__pos2__a.tif``; a plain file name stays as it is). Two paths that flatten alike (``a__b/c.tif`` and
    ``a/b__c.tif``), and names longer than :data:`MAX_NAME_BYTES`, get a hash of their whole path, so every name
    stays unique and the same path always gets the same name."""
    flat = {r: "__".join(PurePosixPath(r).parts) for r in relative}
    counts: dict[str, int] = {}
    for name in flat.values():
        counts[name] = counts.get(name, 0) + 1
    out = {}
    for r, name in flat.items():
        if counts[name] > 1 or len(name.encode()) > MAX_NAME_BYTES:
            digest = hashlib.sha256(r.encode()).hexdigest()[:10]
            tail = name.encode()[-(MAX_NAME_BYTES - 12) :].decode(errors="ignore")
            name = f"{digest}__{tail}" if len(name.encode()) > MAX_NAME_BYTES else f"{Path(name).stem}-{digest}{Path(name).suffix}"
        out[r] = name
    return out


def read_pairs_file(path: Path) -> list[tuple[int, Path, Path]]:
    """The rows of a pairs CSV: (row number, low, GT); paths relative to the CSV's folder unless absolute.

    A first row ``low,gt`` is a header; empty rows and rows starting with ``#`` are skipped. A row without two
    paths, or naming a file that does not exist, is refused with its number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--pairs {path} does not exist; give a CSV file with one low,gt row per pair")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"--pairs {path} is not a readable CSV file ({e}); write one low,gt row per pair") from None
    out = []
    for i, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if i == 1 and [c.lower() for c in cells] == ["low", "gt"]:
            continue
        if len(cells) != 2 or not all(cells):
            raise DataError(f"--pairs {path} row {i}: expected two paths, low,gt, got {','.join(row)!r}")
        low, gt = ((path.parent / c) if not Path(c).is_absolute() else Path(c) for c in cells)
        for side, p in (("low", low), ("GT", gt)):
            if not p.is_file():
                raise DataError(f"--pairs {path} row {i}: the {side} file {p} does not exist (paths are relative to the CSV's folder)")
        if low.resolve() == gt.resolve():
            raise DataError(f"--pairs {path} row {i}: low and GT are the same file ({low}); CARE learns from two acquisitions")
        out.append((i, low, gt))
    if not out:
        raise DataError(f"--pairs {path} lists no pairs; write one low,gt row per pair")
    return out


def _pairs_from_file(path: Path) -> PairingResult:
    rows = read_pairs_file(path)
    result = PairingResult(pairs=[], source_label=f"{path.name} (low)", target_label=f"{path.name} (GT)", how="pairs file")
    for side in ("low", "GT"):
        seen: dict[Path, list[int]] = {}
        for number, low, gt in rows:
            seen.setdefault((low if side == "low" else gt).resolve(), []).append(number)
        result.ambiguous += [
            Ambiguity(f"the {side} column of {path.name}", f"{p}", [f"row {n}" for n in numbers])
            for p, numbers in seen.items()
            if len(numbers) > 1
        ]
    root = _common_folder([low for _, low, _ in rows])
    names = flat_names([low.resolve().relative_to(root).as_posix() for _, low, _ in rows])
    result.pairs = [ImagePair(names[low.resolve().relative_to(root).as_posix()], low, gt) for _, low, gt in rows]
    if result.ambiguous:
        result.pairs = []
    return result


def _common_folder(paths: list[Path]) -> Path:
    import os

    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
