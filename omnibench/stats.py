"""Bootstrap statistics shared by evaluation and attribution (one module, one RNG convention).

Every confidence interval in omnibench is a seeded percentile bootstrap over clips: the same seed
gives the same interval on every machine, and evaluation (WAR / UAR) and attribution (mean shares,
perceptual-score drops) resample the same way, so their intervals are comparable. Each function
draws its resamples from ``numpy.random.default_rng(seed)`` with one ``integers(0, n, (n_boot, n))``
call: changing that call changes every published interval, so do not.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_mean_ci", "bootstrap_war_uar"]


def bootstrap_war_uar(
    g: np.ndarray, correct: np.ndarray, n_classes: int, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[list[float], list[float]]:
    """Percentile bootstrap CIs ``[lo, hi]`` for WAR and UAR, resampling clips with replacement.

    In each resample UAR averages over the classes present in that resample's gold labels.
    Deterministic for a given ``seed``; ``n_boot=0`` gives ``[nan, nan]``.
    """
    n = len(g)
    if n == 0 or n_boot <= 0:
        return [float("nan")] * 2, [float("nan")] * 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    c = correct.astype(float)[idx]  # (B, n)
    wars = c.mean(axis=1)
    # Per-resample class totals / hits via an offset bincount (B * n_classes bins).
    offs = (np.arange(n_boot)[:, None] * n_classes + g[idx]).ravel()
    tot = np.bincount(offs, minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    hit = np.bincount(offs, weights=c.ravel(), minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(tot > 0, hit / np.maximum(tot, 1), np.nan)
    uars = np.nanmean(rec, axis=1)
    a = (1 - ci) / 2
    q = [100 * a, 100 * (1 - a)]
    return [float(x) for x in np.percentile(wars, q)], [float(x) for x in np.percentile(uars, q)]


def bootstrap_mean_ci(
    x: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lo, hi) of the non-NaN values of ``x`` with a seeded percentile bootstrap CI."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    if n_boot <= 0 or len(x) == 1:
        return float(x.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    a = (1 - ci) / 2
    lo, hi = np.percentile(means, [100 * a, 100 * (1 - a)])
    return float(x.mean()), float(lo), float(hi)

