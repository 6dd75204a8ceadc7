"""Checks shared by the analyses: every bad input raises the analysis' own error, naming it."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_series(values: ArrayLike, name: str, error: type[ValueError]) -> np.ndarray:
    """A 1-D float array of finite values, or ``error`` naming the array and the first bad sample."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise error(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise error(f"{name} has a non-finite value at sample {bad[0]}")
    return array


def check_positive(error: type[ValueError], **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise error(f"{name} must be > 0, got {value}")
