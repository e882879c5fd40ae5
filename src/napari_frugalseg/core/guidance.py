"""Label here next: the few square regions where the model is least sure, for the next strokes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from .io import write_csv


@dataclass
class Proposal:
    z: int | None  # slice of a stack (of a series: its planes counted in turn), None in 2D
    y: int  # centre
    x: int
    size: int  # side of the square, pixels
    score: float  # mean uncertainty inside

    @property
    def box(self) -> tuple[slice, slice]:
        h = self.size // 2
        return slice(max(0, self.y - h), self.y - h + self.size), slice(max(0, self.x - h), self.x - h + self.size)


def propose(uncertainty: np.ndarray, n: int = 5, size: int = 64, z_gap: int = 2,
            labelled: np.ndarray | None = None, max_labelled: float = 0.02) -> list[Proposal]:
    """``n`` non-overlapping squares of side ``size`` with the highest mean uncertainty.

    ``uncertainty`` is a per-pixel map (Y, X), a stack (Z, Y, X) or a series of stacks (T, Z, Y,
    X), taken as the stack of all its planes, e.g. ``Prediction.uncertainty``. In a stack squares
    may lie on any slice; two squares less than ``z_gap`` slices apart never
    overlap (neighbouring slices look alike: a stroke on one teaches about the other).
    ``labelled`` (same shape, e.g. scribbles > 0) leaves out squares of which more than
    ``max_labelled`` is labelled already: where the user has just drawn, the model may still be
    unsure, but more strokes there teach it less than strokes elsewhere.
    """
    u = np.asarray(uncertainty, np.float32)
    stack = u.ndim >= 3
    planes = u.reshape(-1, *u.shape[-2:])
    size = int(min(size, *planes.shape[1:]))
    h = size // 2

    def square_means(maps: np.ndarray) -> np.ndarray:
        return np.stack([uniform_filter(p, size, mode="nearest") for p in maps])

    means = square_means(planes)
    if labelled is not None:
        done = np.asarray(labelled, np.float32).reshape(planes.shape)
        means[square_means(done) > max_labelled] = -np.inf
    # centres whose square lies inside the image
    valid = np.full(means.shape, -np.inf, np.float32)
    inner = (slice(None), slice(h, planes.shape[1] - (size - h) + 1), slice(h, planes.shape[2] - (size - h) + 1))
    valid[inner] = means[inner]
    out: list[Proposal] = []
    while len(out) < n:
        idx = int(np.argmax(valid))
        z, y, x = np.unravel_index(idx, valid.shape)
        if not np.isfinite(valid[z, y, x]):
            break
        out.append(Proposal(int(z) if stack else None, int(y), int(x), size, float(valid[z, y, x])))
        near = slice(max(0, z - z_gap + 1), z + z_gap) if stack else slice(z, z + 1)
        valid[near, max(0, y - size + 1): y + size, max(0, x - size + 1): x + size] = -np.inf
    return out


def write_proposals(path: Path, rows: Iterable[tuple[str, int, Proposal]]) -> Path:
    """CSV with columns image, rank, z, y, x, size, score (rank 1 = most uncertain)."""
    header = ["image", "rank", *(f.name for f in fields(Proposal))]
    return write_csv(path, header, ([image, rank, *astuple(p)] for image, rank, p in rows))
