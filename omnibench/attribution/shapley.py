"""Exact Shapley values over a handful of players: pure maths, no model, no I/O.

Kept apart from everything model-bound so the properties that make the attribution trustworthy
(efficiency, symmetry, dummy, exactness over all 2^n coalitions) are tested on plain set functions.

Shapley share
    For players ``P`` with Shapley values ``phi``: ``share_m = phi_m / sum_k |phi_k|`` -- the signed
    fraction of the total absolute attribution. Shares lie in [-1, 1]; when all ``phi`` are >= 0 they
    are non-negative and sum to 1; a modality that lowers the target's value gets a negative share.
    When ``sum_k |phi_k| <= eps`` (no player changes the value) the shares are undefined (NaN).
    The *dominant* modality of a clip is the player (video/audio) with the larger ``phi``; none
    (tie) when they are within ``tie_tol``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np

MODALITIES: tuple[str, ...] = ("video", "audio")
VALUES: tuple[str, ...] = ("prob", "logprob")

__all__ = ["MODALITIES", "VALUES", "coalitions", "dominant", "exact_shapley", "shapley_matrix", "shares",
           "values_from_scores"]


def coalitions(players: Sequence[Hashable]) -> list[frozenset]:
    """All 2^n coalitions, ordered by bitmask (bit j = ``players[j]``): ∅, {p0}, {p1}, {p0,p1}, ..."""
    players = list(players)
    return [frozenset(p for j, p in enumerate(players) if mask >> j & 1) for mask in range(1 << len(players))]


def _weights(n: int) -> np.ndarray:
    """Shapley weight |S|!(n-|S|-1)!/n! for |S| = 0..n-1."""
    return np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])


def exact_shapley(value: Callable[[frozenset], float], players: Sequence[Hashable]) -> dict:
    """Exact Shapley values of ``players`` for the set function ``value``.

    Every one of the 2^n coalitions is evaluated exactly once (``value(frozenset(...))``), then
    ``phi_i = sum_{S ∌ i} |S|!(n-|S|-1)!/n! * (v(S ∪ {i}) - v(S))``.
    Efficiency holds: ``sum(phi) == v(all) - v(∅)`` up to float rounding.
    """
    players = list(players)
    if len(set(players)) != len(players):
        raise ValueError(f"players must be distinct, got {players}")
    if not 1 <= len(players) <= 10:
        raise ValueError(f"exact Shapley needs 1..10 players (2^n evaluations), got {len(players)}")
    table = np.array([float(value(s)) for s in coalitions(players)])
    phi = shapley_matrix(table[None, :], len(players))[0]
    return {p: float(phi[j]) for j, p in enumerate(players)}


def shapley_matrix(values: np.ndarray, n_players: int) -> np.ndarray:
    """Shapley values for many games at once.

    Args:
        values: (n_games, 2^n) coalition values, columns ordered by bitmask as :func:`coalitions`.
    Returns (n_games, n) Shapley values (NaN rows stay NaN).
    """
    values = np.asarray(values, dtype=float)
    n = n_players
    if values.ndim != 2 or values.shape[1] != 1 << n:
        raise ValueError(f"values must be (n_games, {1 << n}), got {values.shape}")
    w = _weights(n)
    phi = np.zeros((values.shape[0], n))
    for j in range(n):
        bit = 1 << j
        for mask in range(1 << n):
            if mask & bit:
                continue
            phi[:, j] += w[mask.bit_count()] * (values[:, mask | bit] - values[:, mask])
    return phi


def shares(phi: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Signed Shapley shares ``phi / sum(|phi|)`` per row; NaN rows where ``sum(|phi|) <= eps``.

    Works on a (k,) vector or an (n, k) matrix.
    """
    phi = np.asarray(phi, dtype=float)
    one = phi.ndim == 1
    p = phi[None] if one else phi
    tot = np.abs(p).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(tot > eps, p / np.where(tot > eps, tot, 1.0), np.nan)
    return s[0] if one else s


def dominant(phi: np.ndarray, players: Sequence[str] = MODALITIES, tie_tol: float = 1e-9) -> list[str | None]:
    """Per row, the player with the largest Shapley value among ``video``/``audio``; None on a tie
    (within ``tie_tol``) or NaN. ``players`` names the columns of ``phi``."""
    phi = np.atleast_2d(np.asarray(phi, dtype=float))
    names = [m for m in MODALITIES if m in players]
    cols = [list(players).index(m) for m in names]
    out: list[str | None] = []
    for row in phi:
        v = row[cols]
        if np.isnan(v).any():
            out.append(None)
            continue
        order = np.argsort(-v, kind="stable")
        if len(v) > 1 and v[order[0]] - v[order[1]] <= tie_tol:
            out.append(None)
        else:
            out.append(names[order[0]])
    return out


def values_from_scores(scores: np.ndarray, target: np.ndarray, kind: str = "prob") -> np.ndarray:
    """Per-clip value of the target from label scores.

    Args:
        scores: (n, L) teacher-forced log-probabilities of ``<answer>label</answer>``.
        target: (n,) target label indices (-1 = no target: NaN value).
        kind: ``prob`` (softmax over the label set at the target) | ``logprob`` (raw log-probability).
    """
    scores = np.asarray(scores, dtype=float)
    target = np.asarray(target, dtype=np.int64)
    if kind not in VALUES:
        raise ValueError(f"value kind must be one of {VALUES}, got {kind!r}")
    if kind == "prob":
        z = scores - scores.max(axis=1, keepdims=True)
        mat = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    else:
        mat = scores
    out = np.full(len(scores), np.nan)
    ok = target >= 0
    out[ok] = mat[np.flatnonzero(ok), target[ok]]
    return out
