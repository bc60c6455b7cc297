"""Reproducible train/test splits."""

from __future__ import annotations

import hashlib

from ..errors import DataError


def split_names(names: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ``names`` into (train, test), both sorted.

    The split depends only on the set of names, the fraction and the seed (not on the order the
    names come in): names are ranked by a seeded hash, and the ``round(test_fraction * n)`` first
    go to test. At least one image stays in training; with ``test_fraction > 0`` and two or more
    images at least one goes to test.
    """
    unique = sorted(set(names))
    n = len(unique)
    if n == 0:
        raise DataError("no images to split")
    n_test = round(test_fraction * n)
    if test_fraction > 0 and n >= 2:
        n_test = max(1, n_test)
    n_test = min(n_test, n - 1)
    ranked = sorted(unique, key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).hexdigest())
    test = sorted(ranked[:n_test])
    train = sorted(ranked[n_test:])
    return train, test
