"""Bootstrap statistics shared by evaluation and attribution (one module, one RNG convention).

Every confidence interval in omnibench is a seeded percentile bootstrap over clips: the same seed
gives the same interval on every machine, and evaluation (WAR / UAR) and attribution (mean shares,
perceptual-score drops) resample the same way, so their intervals are comparable. Each function
draws its resamples from ``numpy.random.default_rng(seed)`` with one ``integers(0, n, (n_boot, n))``
call: changing that call changes every published interval, so do not.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bootstrap_mean_ci",
    "bootstrap_pearson",
    "bootstrap_seeds_clips",
    "bootstrap_war_uar",
    "mean_ci_over_seeds",
    "paired_bootstrap_seeds_clips",
]


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



# --------------------------------------------------------------------------------------------------
# Over seeds (or folds) and clips: what a study reports (omnibench.study)
# --------------------------------------------------------------------------------------------------
#
# A study trains the same recipe once per seed; each seed is scored on its own clips (the SynthEmo draw
# follows the seed). A cell is then a mean over seeds, and a comparison of two checkpoints is paired
# twice: within a seed the two checkpoints answered the same clips, and the seeds are shared. The
# two-level bootstrap below resamples both (seeds with replacement, then each drawn seed's clips with
# replacement), so its interval carries the training noise between seeds and the sampling noise of the
# clips; with one seed it is the ordinary paired bootstrap over clips.


def mean_ci_over_seeds(values, ci: float = 0.95) -> dict:
    """``{"mean", "sd", "ci": [lo, hi], "n", "values"}`` of per-seed values (NaN dropped): a Student-t
    interval with n - 1 degrees of freedom (``[nan, nan]`` for fewer than two values)."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return {"mean": float("nan"), "sd": float("nan"), "ci": [float("nan")] * 2, "n": 0, "values": []}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "sd": float("nan"), "ci": [float("nan")] * 2, "n": 1, "values": x.tolist()}
    from scipy.stats import t as student_t  # scipy comes with scikit-learn, a dependency

    sd = float(x.std(ddof=1))
    half = float(student_t.ppf(0.5 + ci / 2, n - 1)) * sd / np.sqrt(n)
    return {"mean": mean, "sd": sd, "ci": [mean - half, mean + half], "n": n, "values": x.tolist()}


def _resampled_war_uar(g: np.ndarray, correct: np.ndarray, n_classes: int, idx: np.ndarray):
    """WAR and UAR (over the gold classes present in each resample) of every row of ``idx`` (B, n)."""
    n_boot = idx.shape[0]
    c = correct.astype(float)[idx]
    offs = (np.arange(n_boot)[:, None] * n_classes + g[idx]).ravel()
    tot = np.bincount(offs, minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    hit = np.bincount(offs, weights=c.ravel(), minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(tot > 0, hit / np.maximum(tot, 1), np.nan)
    return c.mean(axis=1), np.nanmean(rec, axis=1)


def _war_uar_point(g: np.ndarray, correct: np.ndarray, n_classes: int) -> tuple[float, float]:
    w, u = _resampled_war_uar(g, correct, n_classes, np.arange(len(g))[None])
    return float(w[0]), float(u[0])


def _check_groups(groups, arms: int) -> list[tuple[np.ndarray, ...]]:
    out = []
    for k, grp in enumerate(groups):
        if len(grp) != arms + 1:
            raise ValueError(f"group {k}: expected (gold codes, {arms} correctness array(s)), got {len(grp)} arrays")
        g = np.asarray(grp[0], dtype=np.int64)
        cs = [np.asarray(c, dtype=bool) for c in grp[1:]]
        if any(len(c) != len(g) for c in cs):
            raise ValueError(f"group {k}: gold codes and correctness arrays differ in length "
                             f"({[len(g)] + [len(c) for c in cs]}); pair the clips by id first")
        if len(g) == 0:
            raise ValueError(f"group {k}: no clips")
        out.append((g, *cs))
    if not out:
        raise ValueError("no groups (seeds) to bootstrap")
    return out


def _two_level(per_group: list[np.ndarray], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """(B,) means over seeds drawn with replacement of each seed's (B,) clip-resampled statistic."""
    stack = np.stack(per_group)  # (S, B)
    s = stack.shape[0]
    sidx = rng.integers(0, s, size=(n_boot, s))
    return np.nanmean(stack[sidx, np.arange(n_boot)[:, None]], axis=1)


def _summary(point_per_group: list[float], boot: np.ndarray, ci: float) -> dict:
    a = (1 - ci) / 2
    pts = np.asarray(point_per_group, dtype=float)
    lo, hi = (np.nanpercentile(boot, [100 * a, 100 * (1 - a)]) if len(boot) else (np.nan, np.nan))
    return {"mean": float(np.nanmean(pts)), "ci": [float(lo), float(hi)], "per_seed": pts.tolist()}


def bootstrap_pearson(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, ci: float = 0.95):
    """Pearson r of (x, y) and its percentile bootstrap CI over pairs.

    The draw is this module's convention (one ``default_rng(seed).integers(0, n, (n_boot, n))`` call; the
    same seed gives the same interval). Returns ``(r, [lo, hi], n_undefined)``; resamples in
    which x or y is constant have no r and are left out of the percentiles (``n_boot_undefined``).
    """
    n = len(x)
    nan = float("nan")
    if n < 2:
        return nan, [nan, nan], 0

    def r_of(a, b):  # row-wise Pearson r of (B, n) arrays
        a = a - a.mean(axis=-1, keepdims=True)
        b = b - b.mean(axis=-1, keepdims=True)
        den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 1e-15, (a * b).sum(axis=-1) / np.where(den > 1e-15, den, 1.0), np.nan)
        return np.clip(r, -1.0, 1.0)  # rounding can give 1.0000000000000002

    r = float(r_of(x[None], y[None])[0])
    if n_boot <= 0 or n < 3:
        return r, [nan, nan], 0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    rs = r_of(x[idx], y[idx])
    ok = ~np.isnan(rs)
    if not ok.any():
        return r, [nan, nan], int((~ok).sum())
    a = (1 - ci) / 2
    lo, hi = np.percentile(rs[ok], [100 * a, 100 * (1 - a)])
    return r, [float(lo), float(hi)], int((~ok).sum())


def bootstrap_seeds_clips(
    groups, n_classes: int, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict:
    """WAR and UAR of one checkpoint x split over seeds, with a two-level percentile bootstrap CI.

    ``groups``: one ``(gold codes, correct)`` pair per seed (codes in ``range(n_classes)``; seeds may
    have different clips). Returns ``{"war": {"mean", "ci", "per_seed"}, "uar": {...}, "n_seeds",
    "n_clips"}``; the mean is the mean over seeds of each seed's own figure. Draws, in order: each
    seed's clip indices ``integers(0, n_s, (n_boot, n_s))``, then the seeds ``integers(0, S, (n_boot, S))``
    (WAR and UAR share them)."""
    groups = _check_groups(groups, 1)
    rng = np.random.default_rng(seed)
    wars, uars, pw, pu = [], [], [], []
    for g, c in groups:
        w0, u0 = _war_uar_point(g, c, n_classes)
        pw.append(w0)
        pu.append(u0)
        if n_boot > 0:
            w, u = _resampled_war_uar(g, c, n_classes, rng.integers(0, len(g), size=(n_boot, len(g))))
            wars.append(w)
            uars.append(u)
    if n_boot > 0:
        sstate = rng.bit_generator.state
        bw = _two_level(wars, rng, n_boot)
        rng.bit_generator.state = sstate  # WAR and UAR: the same seed draws
        bu = _two_level(uars, rng, n_boot)
    else:
        bw = bu = np.array([])
    return {"war": _summary(pw, bw, ci), "uar": _summary(pu, bu, ci), "n_seeds": len(groups),
            "n_clips": [len(g) for g, _ in groups]}


def paired_bootstrap_seeds_clips(
    groups, n_classes: int, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict:
    """Paired difference A - B of WAR and UAR over seeds and clips, with a two-level bootstrap CI.

    ``groups``: one ``(gold codes, correct_a, correct_b)`` triple per seed, the arrays aligned clip by
    clip (both checkpoints answered the same clips of that seed). Each bootstrap replicate resamples the
    clips of every seed once, for A and B together (paired), then the seeds. Returns, for ``"war"`` and
    ``"uar"``: ``mean`` (mean over seeds of the observed difference), ``ci`` ([lo, hi]), ``per_seed``
    (the observed differences), ``frac_positive`` (share of seeds whose difference is > 0) and
    ``p_le_0`` (share of replicates <= 0, a one-sided bootstrap p-value); plus ``n_seeds``, ``n_clips``.
    Draws as :func:`bootstrap_seeds_clips`."""
    groups = _check_groups(groups, 2)
    rng = np.random.default_rng(seed)
    dw, du, pw, pu = [], [], [], []
    for g, ca, cb in groups:
        wa, ua = _war_uar_point(g, ca, n_classes)
        wb, ub = _war_uar_point(g, cb, n_classes)
        pw.append(wa - wb)
        pu.append(ua - ub)
        if n_boot > 0:
            idx = rng.integers(0, len(g), size=(n_boot, len(g)))
            (wa_b, ua_b), (wb_b, ub_b) = (_resampled_war_uar(g, c, n_classes, idx) for c in (ca, cb))
            dw.append(wa_b - wb_b)
            du.append(ua_b - ub_b)
    out: dict = {}
    sstate = rng.bit_generator.state
    for key, pts, per in (("war", pw, dw), ("uar", pu, du)):
        rng.bit_generator.state = sstate  # WAR and UAR: the same seed draws
        boot = _two_level(per, rng, n_boot) if n_boot > 0 else np.array([])
        cell = _summary(pts, boot, ci)
        cell["frac_positive"] = float(np.mean(np.asarray(pts) > 0))
        cell["p_le_0"] = float(np.mean(boot <= 0)) if len(boot) else float("nan")
        out[key] = cell
    out["n_seeds"] = len(groups)
    out["n_clips"] = [len(g) for g, _, _ in groups]
    return out
