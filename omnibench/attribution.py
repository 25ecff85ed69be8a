"""Measured modality attribution: exact Shapley values over {video, audio} (optionally the text prompt).

R1-Omni reads modality contributions off its generated reasoning. Here they are measured: for a clip
and a fixed *target* label (the model's own answer by default, or the gold label), a value function
``v(S)`` over coalitions ``S`` of players scores the target with the players outside ``S`` removed,
and exact Shapley values split ``v(all) - v(none)`` between the players.

Value function (per clip, from :func:`omnibench.model.score_labels`, teacher-forced)
    ``value="prob"`` (default): probability of the target among the label set,
    ``softmax_l(log p("<answer>l</answer>" | input))[target]``. Bounded in [0, 1] and blind to
    label-independent terms (how likely "<answer>" itself is under a coalition), so the Shapley
    values measure evidence *for this label against the others*.
    ``value="logprob"``: the raw teacher-forced log-probability of ``<answer>target</answer>``.

Removal strategies (``omnibench.model.apply_removal``)
    ``drop`` (default): the modality's block and tensors are left out of the input — only a clean
    measure of reliance if the model has seen such inputs in training (modality dropout);
    ``black``: black frames / silence; ``noise``: Gaussian noise; ``swap``: another clip's modality
    (a seeded derangement of the clips, perceptual-score style).
    A clip without a modality (e.g. no audio track) always has it removed: that player is a dummy.
    The third player ``text`` (``players=("video", "audio", "text")``) replaces the instruction
    prompt by ``null_prompt``.

Scoring position (``position``) — measured, see ``benchmarks/attribution_bench.py``
    ``<answer>label</answer>`` must be scored where the model actually answers.
    ``"prompt"``: right after the prompt — exact for a model that answers directly (label-only
    SFT), but a model trained to write ``<think>…</think>`` first never answers there: on a
    reasoning tiny thinker (SynthEmo test_id) the argmax there matched its own generated answer on
    only 18% of clips, so the values describe a label it would not give.
    ``"reasoning"``: after the model's own full-input reasoning, the same text in every coalition.
    The reasoning names the cues and often the label, so it carries the answer into coalitions
    without the media: ``v(all) - v(none)`` fell to 7e-5 and ``sum |phi|`` to 7e-4 (all coalitions
    equal) — attribution by text leakage, not by perception. Kept for completeness, never a default.
    ``"regenerate"``: after reasoning the model generates itself *under each coalition* (greedy),
    so the text only carries what that coalition lets it perceive; graded values, consistent with
    the model's answer (the full coalition reuses the completions given), dominant modality equal
    to the generation-based variant's on every clip where that one has no tie. Costs one greedy
    generation per coalition.
    ``"auto"`` (default): ``regenerate`` when most full-input completions reason before
    ``<answer>``, else ``prompt`` (:func:`resolve_position`); the result records the one used.

Shapley share
    For players ``P`` with Shapley values ``phi``: ``share_m = phi_m / sum_k |phi_k|`` — the signed
    fraction of the total absolute attribution. Shares lie in [-1, 1]; when all ``phi`` are >= 0 they
    are non-negative and sum to 1; a modality that lowers the target's value gets a negative share.
    When ``sum_k |phi_k| <= eps`` (no player changes the value) the shares are undefined (NaN): they
    are left out of means (counted as ``n_undefined``) and fail the ``share > 0.5`` validation test.
    The *dominant* modality of a clip is the player (video/audio) with the larger ``phi``; none
    (tie) when they are within ``tie_tol``.

Dataset level
    :class:`AttributionResult` (parallel arrays) gives mean shares per class / per SynthEmo condition
    with bootstrap CIs, the validation test (``.validation()``) and reasoning-cue faithfulness
    (``.faithfulness()``). :func:`perceptual_score` permutes one modality across the split and
    measures the accuracy drop (several permutations, bootstrap CI over clips).
    :func:`attribute_generate` is the slower generation-based cross-check (value = 1 when the
    greedy answer under the coalition equals the target).

Reasoning-cue attribution
    :func:`cue_counts` counts the lexicon's video and audio cue words in the reasoning
    (``<think>`` part); the *stated* video share is ``n_video / (n_video + n_audio)`` (NaN with no
    cue). Faithfulness = per-clip agreement between the stated dominant modality (stated share
    above/below 0.5) and the measured one, and the Pearson correlation between the stated video
    share and the measured video share.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnibench.labels import DFEW7

MODALITIES: tuple[str, ...] = ("video", "audio")
STRATEGIES: tuple[str, ...] = ("drop", "black", "noise", "swap")
VALUES: tuple[str, ...] = ("prob", "logprob")
POSITIONS: tuple[str, ...] = ("auto", "prompt", "reasoning", "regenerate")


# ============================================================================== exact Shapley (pure)


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


# ============================================================================== bootstrap helpers


def bootstrap_mean_ci(x: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> tuple[float, float, float]:
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


# ============================================================================== reasoning cues


_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", flags=re.DOTALL)
_ANSWER_BLOCK_RE = re.compile(r"<answer>.*?(?:</answer>|$)", flags=re.DOTALL)


def default_lexicon() -> dict[str, list[str]]:
    """SynthEmo's cue words (``omnibench.data.synth.CUE_LEXICON``): {"video": [...], "audio": [...]}."""
    try:
        from omnibench.data.synth import CUE_LEXICON
    except ImportError as e:
        raise ImportError(
            "the default cue lexicon is omnibench.data.synth.CUE_LEXICON, which could not be imported "
            f"({e}); pass lexicon={{'video': [...], 'audio': [...]}} explicitly"
        ) from e
    return {k: list(v) for k, v in CUE_LEXICON.items()}


def reasoning_text(completion: str | None) -> str:
    """The reasoning of a completion: the ``<think>`` block if any, else the text without the answer."""
    if not completion:
        return ""
    m = _THINK_RE.search(completion)
    if m:
        return m.group(1)
    return _ANSWER_BLOCK_RE.sub(" ", completion)


def _cue_patterns(lexicon: Mapping[str, Sequence[str]]) -> dict[str, re.Pattern | None]:
    pats = {}
    for mod in MODALITIES:
        words = sorted({w.strip().lower() for w in lexicon.get(mod, []) if w and w.strip()}, key=len, reverse=True)
        if not words:
            pats[mod] = None
            continue
        alts = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
        pats[mod] = re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])", flags=re.IGNORECASE)
    return pats


def cue_counts(text: str | None, lexicon: Mapping[str, Sequence[str]] | None = None) -> dict[str, int]:
    """Occurrences of each modality's cue words/phrases in the reasoning of ``text``.

    Matching is case-insensitive on whole words (multi-word cues match across any whitespace);
    longer cues are tried first so "high pitch" is not also counted as "pitch".
    """
    lexicon = default_lexicon() if lexicon is None else lexicon
    body = reasoning_text(text)
    return {mod: (len(p.findall(body)) if p is not None else 0) for mod, p in _cue_patterns(lexicon).items()}


def stated_shares(texts: Sequence[str | None], lexicon: Mapping[str, Sequence[str]] | None = None):
    """(stated video share (n,), video counts (n,), audio counts (n,)); share NaN when no cue is cited."""
    lexicon = default_lexicon() if lexicon is None else lexicon
    counts = [cue_counts(t, lexicon) for t in texts]
    nv = np.array([c["video"] for c in counts], dtype=float)
    na = np.array([c["audio"] for c in counts], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(nv + na > 0, nv / np.maximum(nv + na, 1), np.nan)
    return s, nv.astype(int), na.astype(int)


def faithfulness(stated_video_share: np.ndarray, measured_phi: np.ndarray, players: Sequence[str] = MODALITIES,
                 tie_tol: float = 1e-9) -> dict:
    """Agreement of stated (reasoning cues) and measured (Shapley) attribution.

    ``agreement``: fraction of clips, among those where both a stated dominant modality (stated video
    share != 0.5, not NaN) and a measured one (no tie) exist, where they are the same.
    ``correlation``: Pearson correlation over clips with both defined between the stated video share
    and the measured video share (``share_video`` of :func:`shares`); NaN with < 3 clips or no variance.
    """
    stated = np.asarray(stated_video_share, dtype=float)
    phi = np.atleast_2d(np.asarray(measured_phi, dtype=float))
    meas_dom = dominant(phi, players, tie_tol)
    st_dom = [None if np.isnan(s) or s == 0.5 else ("video" if s > 0.5 else "audio") for s in stated]
    both = [(a, b) for a, b in zip(st_dom, meas_dom) if a is not None and b is not None]
    agreement = float(np.mean([a == b for a, b in both])) if both else float("nan")
    sv = shares(phi)[:, list(players).index("video")]
    ok = ~np.isnan(stated) & ~np.isnan(sv)
    corr = float("nan")
    if ok.sum() >= 3 and np.std(stated[ok]) > 0 and np.std(sv[ok]) > 0:
        corr = float(np.corrcoef(stated[ok], sv[ok])[0, 1])
    return {
        "agreement": agreement,
        "correlation": corr,
        "n_agreement": len(both),
        "n_correlation": int(ok.sum()),
        "n_no_cue": int(np.isnan(stated).sum()),
    }


# ============================================================================== perceptual score (pure)


def perceptual_from_correct(correct: np.ndarray, correct_perm: np.ndarray, n_boot: int = 1000, seed: int = 0,
                            ci: float = 0.95) -> dict:
    """Perceptual score from per-clip correctness on the original inputs (n,) and with one modality
    permuted across the split (P permutations, (P, n)).

    ``drop = acc - mean_p acc_p``; CI: bootstrap over clips of the per-clip drop
    ``correct_i - mean_p correct_perm[p, i]``; ``drop_std_perm``: spread over permutations;
    ``normalized = drop / acc`` (Gat et al.'s normalised perceptual score).
    """
    c = np.asarray(correct, dtype=float)
    cp = np.atleast_2d(np.asarray(correct_perm, dtype=float))
    if cp.shape[1] != len(c):
        raise ValueError(f"correct_perm must be (P, {len(c)}), got {cp.shape}")
    per_clip = c - cp.mean(axis=0)
    drop, lo, hi = bootstrap_mean_ci(per_clip, n_boot=n_boot, seed=seed, ci=ci)
    acc = float(c.mean()) if len(c) else float("nan")
    accp = cp.mean(axis=1)
    return {
        "acc": acc,
        "acc_perm": float(accp.mean()) if len(c) else float("nan"),
        "drop": drop,
        "drop_ci": [lo, hi],
        "drop_std_perm": float(accp.std(ddof=1)) if len(accp) > 1 else float("nan"),
        "normalized": float(drop / acc) if acc and acc > 0 else float("nan"),
        "n": len(c),
        "n_perm": int(cp.shape[0]),
    }


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) with no fixed point (identity for n < 2)."""
    if n < 2:
        return np.arange(n)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p


# ============================================================================== result object


@dataclass
class AttributionResult:
    """Per-clip attribution (parallel arrays) for one model x split x strategy x value x target.

    ``values`` (n, 2^k) holds ``v(S)`` for the coalitions of :func:`coalitions` (``coalition_names``),
    ``phi`` (n, k) the Shapley values, ``share`` (n, k) the shares. ``prediction`` is the model's
    answer (generated if given, else the argmax of the full-input label scores); ``target`` the label
    whose value was attributed. Optional: ``completion`` (generated text, for reasoning cues),
    ``stated_video_share``, ``n_cues_video``/``n_cues_audio``.
    """

    ids: list[str]
    gold: list[str | None]
    prediction: list[str | None]
    target: list[str | None]
    condition: list[str | None]
    players: tuple[str, ...]
    values: np.ndarray
    phi: np.ndarray
    share: np.ndarray
    strategy: str = "drop"
    value_kind: str = "prob"
    target_kind: str = "prediction"
    position: str = "prompt"
    method: str = "score"
    video_label: list[str | None] = field(default_factory=list)
    audio_label: list[str | None] = field(default_factory=list)
    completion: list[str | None] = field(default_factory=list)
    stated_video_share: np.ndarray | None = None
    n_cues_video: np.ndarray | None = None
    n_cues_audio: np.ndarray | None = None
    seconds: float = float("nan")
    label_scores: np.ndarray | None = field(default=None, repr=False)  # (n, 2^k, L) when scored

    def __post_init__(self):
        n = len(self.ids)
        self.values = np.asarray(self.values, dtype=float).reshape(n, 1 << len(self.players))
        self.phi = np.asarray(self.phi, dtype=float).reshape(n, len(self.players))
        self.share = np.asarray(self.share, dtype=float).reshape(n, len(self.players))
        for name in ("gold", "prediction", "target", "condition"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"AttributionResult.{name} has {len(getattr(self, name))} entries, ids {n}")
        for name in ("video_label", "audio_label", "completion"):
            if not getattr(self, name):
                setattr(self, name, [None] * n)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def coalition_names(self) -> list[str]:
        return ["+".join(sorted(s, key=list(self.players).index)) or "none" for s in coalitions(self.players)]

    @property
    def correct(self) -> np.ndarray:
        return np.array([p is not None and p == g for p, g in zip(self.prediction, self.gold)], dtype=bool)

    def share_of(self, player: str) -> np.ndarray:
        return self.share[:, list(self.players).index(player)]

    def dominant(self, tie_tol: float = 1e-9) -> list[str | None]:
        return dominant(self.phi, self.players, tie_tol)

    # ------------------------------------------------------------------ tables
    def to_frame(self):
        """One row per clip: ids/labels, ``v_<coalition>``, ``phi_<player>``, ``share_<player>``, dominant."""
        import pandas as pd

        d = {
            "id": self.ids, "gold": self.gold, "prediction": self.prediction, "target": self.target,
            "correct": self.correct, "condition": self.condition,
            "video_label": self.video_label, "audio_label": self.audio_label,
        }
        for j, name in enumerate(self.coalition_names):
            d[f"v_{name}"] = self.values[:, j]
        for j, p in enumerate(self.players):
            d[f"phi_{p}"] = self.phi[:, j]
        for j, p in enumerate(self.players):
            d[f"share_{p}"] = self.share[:, j]
        d["dominant"] = self.dominant()
        if self.stated_video_share is not None:
            d["stated_video_share"] = self.stated_video_share
            d["n_cues_video"] = self.n_cues_video
            d["n_cues_audio"] = self.n_cues_audio
        df = pd.DataFrame(d)
        df.attrs.update(strategy=self.strategy, value=self.value_kind, target=self.target_kind,
                        position=self.position, method=self.method)
        return df

    def _group_summary(self, keys: Sequence, n_boot: int, seed: int, only=None):
        import pandas as pd

        keys = np.array([k if k is not None else "<none>" for k in keys], dtype=object)
        mask = np.ones(len(self), bool) if only is None else np.asarray(only, bool)
        rows = []
        for g in sorted(set(keys[mask]), key=str):
            sel = mask & (keys == g)
            row = {"group": g, "n": int(sel.sum())}
            for j, p in enumerate(self.players):
                x = self.share[sel, j]
                m, lo, hi = bootstrap_mean_ci(x, n_boot=n_boot, seed=seed)
                row.update({f"share_{p}": m, f"share_{p}_lo": lo, f"share_{p}_hi": hi})
            row["n_undefined"] = int(np.isnan(self.share[sel, 0]).sum())
            row["accuracy"] = float(self.correct[sel].mean())
            rows.append(row)
        return pd.DataFrame(rows)

    def by_class(self, by: str = "gold", n_boot: int = 1000, seed: int = 0, correct_only: bool = False):
        """Mean shares per class (``by`` = gold | target | prediction) with bootstrap 95% CIs."""
        keys = {"gold": self.gold, "target": self.target, "prediction": self.prediction}[by]
        return self._group_summary(keys, n_boot, seed, self.correct if correct_only else None)

    def by_condition(self, n_boot: int = 1000, seed: int = 0, correct_only: bool = False):
        """Mean shares per SynthEmo condition (both / video / audio) with bootstrap 95% CIs."""
        return self._group_summary(self.condition, n_boot, seed, self.correct if correct_only else None)

    def validation(self, neutral: str = "neutral", min_effect: float = 0.05) -> dict:
        """The SynthEmo ground-truth check, per informative modality (video, audio).

        Among clips of condition video (resp. audio) with a non-neutral gold label that the model
        classifies correctly: ``n`` and ``share_ok`` = fraction whose informative modality has share
        > 0.5 (NaN shares count as not ok; ``share_ok`` is NaN when ``n == 0``).

        Diagnostics: ``n_undefined`` (NaN shares); ``n_media_relevant`` = those clips whose total
        attribution ``sum |phi|`` is at least ``min_effect`` (in value units: 0.05 of probability
        for ``value="prob"``) and ``share_ok_media_relevant`` among them. A correct answer the model
        also gives with no media at all (its prior guess) has ``sum |phi| ~ 0``: its shares are noise
        and say nothing about the method.
        """
        out = {}
        cond = np.array([c if c is not None else "" for c in self.condition], dtype=object)
        gold = np.array([g if g is not None else "" for g in self.gold], dtype=object)
        effect = np.nansum(np.abs(self.phi), axis=1)
        for mod in MODALITIES:
            if mod not in self.players:
                continue
            sel = (cond == mod) & (gold != neutral) & (gold != "") & self.correct
            ok = np.nan_to_num(self.share_of(mod), nan=-np.inf) > 0.5
            rel = sel & (effect >= min_effect)
            out[mod] = {
                "n": int(sel.sum()),
                "share_ok": float(ok[sel].mean()) if sel.any() else float("nan"),
                "n_undefined": int(np.isnan(self.share_of(mod)[sel]).sum()),
                "n_media_relevant": int(rel.sum()),
                "share_ok_media_relevant": float(ok[rel].mean()) if rel.any() else float("nan"),
            }
        return out

    def with_reasoning(self, completions: Sequence[str | None], lexicon: Mapping[str, Sequence[str]] | None = None):
        """Attach generated completions and their stated (cue-word) video shares; returns self."""
        if len(completions) != len(self):
            raise ValueError(f"{len(completions)} completions for {len(self)} clips")
        self.completion = list(completions)
        self.stated_video_share, self.n_cues_video, self.n_cues_audio = stated_shares(completions, lexicon)
        return self

    def faithfulness(self, correct_only: bool = False) -> dict:
        """Stated (reasoning cues) vs measured (Shapley) dominant modality; see :func:`faithfulness`."""
        if self.stated_video_share is None:
            raise ValueError("no reasoning attached: call .with_reasoning(completions) first")
        sel = self.correct if correct_only else np.ones(len(self), bool)
        return faithfulness(self.stated_video_share[sel], self.phi[sel], self.players)

    def summary(self, n_boot: int = 1000, seed: int = 0) -> dict:
        """The metrics.json "attribution" object (validation, faithfulness) plus method details."""
        out: dict = {"validation": {k: {"n": v["n"], "share_ok": v["share_ok"]} for k, v in self.validation().items()}}
        if self.stated_video_share is not None:
            f = self.faithfulness()
            out["faithfulness"] = {"agreement": f["agreement"], "correlation": f["correlation"]}
            out["faithfulness_counts"] = {k: v for k, v in f.items() if k.startswith("n_")}
        out["method"] = {"strategy": self.strategy, "value": self.value_kind, "target": self.target_kind,
                         "position": self.position, "method": self.method, "n": len(self),
                         "n_undefined": int(np.isnan(self.share[:, 0]).sum()), "seconds": self.seconds}
        out["by_condition"] = self.by_condition(n_boot=n_boot, seed=seed).to_dict(orient="records")
        return out

    # ------------------------------------------------------------------ persistence
    def records(self) -> list[dict]:
        names = self.coalition_names
        recs = []
        for i in range(len(self)):
            r = {
                "id": self.ids[i], "gold": self.gold[i], "prediction": self.prediction[i], "target": self.target[i],
                "condition": self.condition[i], "video_label": self.video_label[i], "audio_label": self.audio_label[i],
                "values": {n: _f(self.values[i, j]) for j, n in enumerate(names)},
                "phi": {p: _f(self.phi[i, j]) for j, p in enumerate(self.players)},
                "share": {p: _f(self.share[i, j]) for j, p in enumerate(self.players)},
                "strategy": self.strategy, "value": self.value_kind, "target_kind": self.target_kind,
                "position": self.position, "method": self.method,
            }
            if self.completion[i] is not None:
                r["completion"] = self.completion[i]
            if self.stated_video_share is not None:
                r["stated_video_share"] = _f(self.stated_video_share[i])
                r["n_cues"] = {"video": int(self.n_cues_video[i]), "audio": int(self.n_cues_audio[i])}
            recs.append(r)
        return recs

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``attribution.jsonl`` (one clip per line; NaN as null)."""
        from omnibench.evaluate import _atomic_write

        return _atomic_write(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttributionResult:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"attribution file {path} not found (write one with `omnibench attribute`)")
        with open(path, encoding="utf-8") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        if not recs:
            raise ValueError(f"{path} holds no attribution records")
        players = tuple(recs[0]["phi"].keys())
        names = list(recs[0]["values"].keys())
        nan = float("nan")

        def arr(key, cols):
            return np.array([[nan if r[key][c] is None else r[key][c] for c in cols] for r in recs], dtype=float)

        has_stated = "stated_video_share" in recs[0]
        r0 = recs[0]
        return cls(
            ids=[r["id"] for r in recs], gold=[r["gold"] for r in recs], prediction=[r["prediction"] for r in recs],
            target=[r["target"] for r in recs], condition=[r.get("condition") for r in recs], players=players,
            values=arr("values", names), phi=arr("phi", players), share=arr("share", players),
            strategy=r0.get("strategy", "drop"), value_kind=r0.get("value", "prob"),
            target_kind=r0.get("target_kind", "prediction"), position=r0.get("position", "prompt"),
            method=r0.get("method", "score"),
            video_label=[r.get("video_label") for r in recs], audio_label=[r.get("audio_label") for r in recs],
            completion=[r.get("completion") for r in recs],
            stated_video_share=np.array([nan if r["stated_video_share"] is None else r["stated_video_share"] for r in recs])
            if has_stated else None,
            n_cues_video=np.array([r["n_cues"]["video"] for r in recs]) if has_stated else None,
            n_cues_audio=np.array([r["n_cues"]["audio"] for r in recs]) if has_stated else None,
        )


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def dominant_agreement(a: AttributionResult, b: AttributionResult) -> dict:
    """How often two attributions of the same clips (e.g. scoring vs generation) name the same dominant
    modality: ``agreement`` over clips where both have one; counts of ties."""
    if list(a.ids) != list(b.ids):
        raise ValueError("the two attributions cover different clips (ids differ)")
    da, db = a.dominant(), b.dominant()
    both = [(x, y) for x, y in zip(da, db) if x is not None and y is not None]
    return {
        "agreement": float(np.mean([x == y for x, y in both])) if both else float("nan"),
        "n": len(both),
        "n_tie_a": sum(x is None for x in da),
        "n_tie_b": sum(y is None for y in db),
    }


# ============================================================================== model-bound


@dataclass
class AttributionConfig:
    """How :func:`attribute` measures modality attribution."""

    players: tuple[str, ...] = field(default=MODALITIES, metadata={"help": "Shapley players: video, audio (+ text)"})
    strategy: str = field(default="drop", metadata={"help": "removal: drop | black | noise | swap"})
    value: str = field(default="prob", metadata={"help": "prob (target prob. among labels) | logprob (raw)"})
    target: str = field(default="prediction", metadata={"help": "prediction (the model's answer) | gold"})
    position: str = field(default="auto", metadata={"help": "where <answer>label</answer> is scored: auto (regenerate "
                          "for a model that reasons first, else prompt) | prompt (right after it) | reasoning (after "
                          "the full-input reasoning; leaks the answer) | regenerate (after reasoning generated "
                          "under each coalition)"})
    batch_size: int = field(default=8, metadata={"help": "clips per forward pass"})
    seed: int = field(default=0, metadata={"help": "seed for noise and swap donors"})
    prompt: str | None = field(default=None, metadata={"help": "instruction prompt (None = model layer's DEFAULT_PROMPT)"})
    null_prompt: str = field(default="", metadata={"help": "prompt used when the 'text' player is removed"})
    max_new_tokens: int = field(default=96, metadata={"help": "reasoning length for position reasoning/regenerate"})

    def __post_init__(self):
        self.players = tuple(self.players)
        bad = set(self.players) - {"video", "audio", "text"}
        if bad or not self.players or len(set(self.players)) != len(self.players):
            raise ValueError(f"players must be distinct names among video, audio, text; got {self.players}")
        for name, allowed in (("strategy", STRATEGIES), ("value", VALUES), ("target", ("prediction", "gold")),
                              ("position", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"AttributionConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")


def _available(m) -> frozenset:
    return frozenset(x for x, ok in (("video", m.frames is not None), ("audio", m.audio is not None)) if ok)


def coalition_inputs(media: Sequence, keep: frozenset, strategy: str = "drop", seed: int = 0,
                     donors: Sequence[int] | None = None) -> tuple[list, list[frozenset]]:
    """Media and modality sets of every clip for one coalition ``keep`` (a subset of video/audio).

    A modality the clip lacks is always absent (dropped). ``donors[i]`` is the clip whose modality
    replaces clip i's under ``swap``; ``noise`` draws from a generator seeded by (seed, i).
    """
    from omnibench.model import apply_removal

    out_media, out_mods = [], []
    for i, m in enumerate(media):
        avail = _available(m)
        k = frozenset(keep) & avail
        if k == avail:
            out_media.append(m)
            out_mods.append(avail)
            continue
        donor = media[donors[i]] if (strategy == "swap" and donors is not None) else None
        if strategy == "swap" and donor is None:
            raise ValueError("strategy 'swap' needs donors (indices of the clips lending their modality)")
        rng = np.random.default_rng([seed, i])
        m2, mods = apply_removal(m, k | (frozenset(MODALITIES) - avail) if strategy != "drop" else k,
                                 strategy=strategy, rng=rng, donor=donor)
        out_media.append(m2)
        out_mods.append(frozenset(mods) & (_available(m2)))
    return out_media, out_mods


def _reasoning_prefix(completion: str | None) -> str:
    """The text a model wrote before its ``<answer>`` (its reasoning), used as the scoring prefix."""
    if not completion:
        return ""
    j = completion.find("<answer>")
    return completion[:j] if j >= 0 else completion


def resolve_position(completions: Sequence[str | None] | None) -> str:
    """``position="auto"``: where the model answers. ``"regenerate"`` when at least half of its
    full-input completions write something (reasoning) before ``<answer>``, else ``"prompt"``
    (a label-only model answers right after the prompt). No completions -> ``"prompt"``."""
    if not completions:
        return "prompt"
    reasons = [bool(_reasoning_prefix(c).strip()) for c in completions]
    return "regenerate" if np.mean(reasons) >= 0.5 else "prompt"


def coalition_scores(model, processor, media: Sequence, labels: Sequence[str], config: AttributionConfig,
                     prefix: Sequence[str] | None = None, position: str | None = None,
                     progress: bool = False) -> np.ndarray:
    """(n_clips, 2^k, n_labels) label scores for every coalition of ``config.players``.

    One :func:`omnibench.model.score_labels` call per coalition over all clips (rows grouped by
    coalition, so every forward batch has one modality layout).

    ``position`` (default ``config.position``; "auto" must be resolved first):
    ``prompt`` -> no prefix; ``reasoning`` -> ``prefix`` (one per clip) in every coalition;
    ``regenerate`` -> greedy reasoning generated under each coalition (under the full coalition,
    ``prefix`` is used when given: the reasoning of the completions already generated).
    """
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT

    position = position or config.position
    if position not in ("prompt", "reasoning", "regenerate"):
        raise ValueError(f"position must be prompt | reasoning | regenerate here, got {position!r}")
    if position == "reasoning" and prefix is None:
        raise ValueError("position='reasoning' needs the reasoning prefix of every clip")
    prompt = config.prompt if config.prompt is not None else DEFAULT_PROMPT
    n = len(media)
    donors = derangement(n, np.random.default_rng(config.seed)) if config.strategy == "swap" else None
    coal = coalitions(config.players)
    out = np.full((n, len(coal), len(labels)), np.nan)
    for j, S in enumerate(coal):
        keep = frozenset(S) & frozenset(MODALITIES)
        media_s, mods_s = coalition_inputs(media, keep, config.strategy, config.seed, donors)
        p = prompt if ("text" in S or "text" not in config.players) else config.null_prompt
        pre = None
        if position == "reasoning" or (position == "regenerate" and prefix is not None and j == len(coal) - 1):
            pre = list(prefix)
        elif position == "regenerate":  # the model's own reasoning under this coalition
            pre = [_reasoning_prefix(c) for c in generate(model, processor, media_s, mods_s, prompt=p,
                                                          max_new_tokens=config.max_new_tokens,
                                                          batch_size=config.batch_size)]
        out[:, j, :] = score_labels(model, processor, media_s, mods_s, list(labels), prompt=p, prefix=pre,
                                    batch_size=config.batch_size)
        if progress:
            print(f"  coalition {'+'.join(sorted(S)) or 'none'}: scored {n} clips", flush=True)
    return out


def _meta(clips, key):
    return [(c.meta or {}).get(key) for c in clips]


def attribute(model, processor, clips, media=None, labels: Sequence[str] = DFEW7, config: AttributionConfig | None = None,
              completions: Sequence[str] | None = None, predictions: Sequence[str | None] | None = None,
              lexicon: Mapping[str, Sequence[str]] | None = None, decode_config=None, cache=None,
              progress: bool = False) -> AttributionResult:
    """Scoring-based exact Shapley attribution for every clip (no generation unless needed).

    Args:
        clips: manifest clips (gold label, SynthEmo meta: condition, video_label, audio_label).
        media: their decoded Media (decoded here if None).
        config: :class:`AttributionConfig`.
        completions: the model's generated completions under the full input (e.g. from the
            predictions JSONL). Needed for ``position="reasoning"`` (generated here if absent) and
            attached for reasoning-cue faithfulness when given.
        predictions: the model's answers (e.g. parsed from ``completions``); default: argmax of the
            full-input label scores. ``target="prediction"`` attributes these.
        lexicon: cue lexicon for the stated shares (default SynthEmo's CUE_LEXICON).
    """
    from omnibench.evaluate import paired_media, resolve_prediction

    cfg = config or AttributionConfig()
    labels = tuple(labels)
    clips, media = paired_media(clips, media, decode_config, cache, progress)
    t0 = time.perf_counter()
    if cfg.position != "prompt" and completions is None:
        from omnibench.model import generate
        from omnibench.model.inputs import ALL, DEFAULT_PROMPT

        completions = generate(model, processor, media, ALL, prompt=cfg.prompt or DEFAULT_PROMPT,
                               batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
    if completions is not None and len(completions) != len(clips):
        raise ValueError(f"{len(completions)} completions for {len(clips)} clips")
    position = resolve_position(completions) if cfg.position == "auto" else cfg.position
    prefix = [_reasoning_prefix(c) for c in completions] if position != "prompt" else None
    scores = coalition_scores(model, processor, media, labels, cfg, prefix=prefix, position=position,
                              progress=progress)
    full = scores[:, -1, :]
    if predictions is None and completions is not None:
        predictions = [resolve_prediction(c, labels)[0] for c in completions]
    if predictions is None:
        predictions = [labels[i] for i in full.argmax(axis=1)]
    lab_index = {l: i for i, l in enumerate(labels)}
    gold = [c.label for c in clips]
    tgt_labels = list(predictions) if cfg.target == "prediction" else gold
    tidx = np.array([lab_index.get(t, -1) if t is not None else -1 for t in tgt_labels])
    values = np.stack([values_from_scores(scores[:, j, :], tidx, cfg.value) for j in range(scores.shape[1])], axis=1)
    phi = shapley_matrix(values, len(cfg.players))
    res = AttributionResult(
        label_scores=scores, ids=[c.id for c in clips], gold=gold, prediction=list(predictions),
        target=[t if (t is not None and t in lab_index) else None for t in tgt_labels],
        condition=_meta(clips, "condition"), players=cfg.players, values=values, phi=phi, share=shares(phi),
        strategy=cfg.strategy, value_kind=cfg.value, target_kind=cfg.target, position=position, method="score",
        video_label=_meta(clips, "video_label"), audio_label=_meta(clips, "audio_label"),
        seconds=time.perf_counter() - t0,
    )
    if completions is not None:
        res.with_reasoning(completions, lexicon)
    return res


def attribute_generate(model, processor, clips, media, labels: Sequence[str] = DFEW7,
                       config: AttributionConfig | None = None, targets: Sequence[str | None] | None = None,
                       max_new_tokens: int = 64, progress: bool = False) -> AttributionResult:
    """Generation-based cross-check: ``v(S) = 1`` when the greedy answer under coalition S equals the
    target (the full-input generated answer by default, or gold with ``config.target="gold"``), else 0."""
    from omnibench.evaluate import paired_media, resolve_prediction
    from omnibench.model import generate
    from omnibench.model.inputs import DEFAULT_PROMPT

    cfg = config or AttributionConfig()
    labels = tuple(labels)
    clips, media = paired_media(clips, media)
    prompt = cfg.prompt if cfg.prompt is not None else DEFAULT_PROMPT
    n = len(clips)
    donors = derangement(n, np.random.default_rng(cfg.seed)) if cfg.strategy == "swap" else None
    t0 = time.perf_counter()
    coal = coalitions(cfg.players)
    answers: list[list[str | None]] = []
    full_completions = None
    for S in coal:
        keep = frozenset(S) & frozenset(MODALITIES)
        media_s, mods_s = coalition_inputs(media, keep, cfg.strategy, cfg.seed, donors)
        p = prompt if ("text" in S or "text" not in cfg.players) else cfg.null_prompt
        comps = generate(model, processor, media_s, mods_s, prompt=p, max_new_tokens=max_new_tokens,
                         do_sample=False, batch_size=cfg.batch_size)
        answers.append([resolve_prediction(c, labels)[0] for c in comps])
        if S == frozenset(cfg.players):
            full_completions = comps
        if progress:
            print(f"  coalition {'+'.join(sorted(S)) or 'none'}: generated {n}", flush=True)
    prediction = answers[-1]
    gold = [c.label for c in clips]
    if targets is None:
        targets = prediction if cfg.target == "prediction" else gold
    values = np.array([[np.nan if t is None else float(a[i] == t) for a in answers] for i, t in enumerate(targets)])
    phi = shapley_matrix(values, len(cfg.players))
    res = AttributionResult(
        ids=[c.id for c in clips], gold=gold, prediction=list(prediction), target=list(targets),
        condition=_meta(clips, "condition"), players=cfg.players, values=values, phi=phi, share=shares(phi),
        strategy=cfg.strategy, value_kind="match", target_kind=cfg.target, position="generate", method="generate",
        video_label=_meta(clips, "video_label"), audio_label=_meta(clips, "audio_label"),
        completion=list(full_completions), seconds=time.perf_counter() - t0,
    )
    return res


@dataclass
class PerceptualResult:
    """Perceptual scores: per-clip correctness on original inputs and with each modality permuted."""

    ids: list[str]
    condition: list[str | None]
    gold: list[str | None]
    correct: np.ndarray  # (n,)
    correct_perm: dict[str, np.ndarray]  # modality -> (P, n)
    mode: str = "score"

    def summary(self, by: str | None = None, n_boot: int = 1000, seed: int = 0):
        """DataFrame: one row per modality (x condition when ``by="condition"``) of
        :func:`perceptual_from_correct` figures."""
        import pandas as pd

        groups = {"all": np.ones(len(self.ids), bool)}
        if by == "condition":
            cond = np.array([c if c is not None else "<none>" for c in self.condition], dtype=object)
            groups = {g: cond == g for g in sorted(set(cond))}
        rows = []
        for mod, cp in self.correct_perm.items():
            for g, sel in groups.items():
                r = perceptual_from_correct(self.correct[sel], cp[:, sel], n_boot=n_boot, seed=seed)
                rows.append({"modality": mod, "group": g, **{k: v for k, v in r.items() if k != "drop_ci"},
                             "drop_lo": r["drop_ci"][0], "drop_hi": r["drop_ci"][1]})
        return pd.DataFrame(rows)


def perceptual_score(model, processor, clips, media, labels: Sequence[str] = DFEW7,
                     modalities: Sequence[str] = MODALITIES, n_perm: int = 5, seed: int = 0, mode: str = "auto",
                     batch_size: int = 8, prompt: str | None = None, max_new_tokens: int = 64) -> PerceptualResult:
    """Accuracy drop when one modality is permuted across the split (each clip gets another clip's
    video or audio; ``n_perm`` seeded derangements).

    ``mode``: ``generate`` (greedy answers) | ``score`` (argmax of label scores right after the prompt:
    fast, but only the model's answer for a model that answers without reasoning) | ``auto``
    (generate the unpermuted answers; keep generating if the model reasons first, else switch to score).
    """
    if mode not in ("auto", "score", "generate"):
        raise ValueError(f"mode must be auto | score | generate, got {mode!r}")
    from omnibench.evaluate import paired_media, resolve_prediction
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT

    labels = tuple(labels)
    prompt = prompt if prompt is not None else DEFAULT_PROMPT
    clips, media = paired_media(clips, media)
    gold = [c.label for c in clips]

    def predict(media_s, mods_s, how):
        if how == "score":
            sc = score_labels(model, processor, media_s, mods_s, list(labels), prompt=prompt, batch_size=batch_size)
            return [labels[i] for i in np.asarray(sc).argmax(axis=1)], None
        comps = generate(model, processor, media_s, mods_s, prompt=prompt, max_new_tokens=max_new_tokens,
                         batch_size=batch_size)
        return [resolve_prediction(c, labels)[0] for c in comps], comps

    full_mods = [_available(m) for m in media]
    pred, comps = predict(media, full_mods, "generate" if mode == "auto" else mode)
    if mode == "auto":
        mode = "generate" if resolve_position(comps) == "regenerate" else "score"
        if mode == "score":
            pred, _ = predict(media, full_mods, "score")
    base = np.array([p == g for p, g in zip(pred, gold)])
    rng = np.random.default_rng(seed)
    perms = [derangement(len(media), rng) for _ in range(n_perm)]
    out = {}
    for mod in modalities:
        rows = []
        for perm in perms:
            keep = frozenset(MODALITIES) - {mod}
            media_s, _ = coalition_inputs(media, keep, "swap", seed, perm)
            rows.append([p == g for p, g in zip(predict(media_s, full_mods, mode)[0], gold)])
        out[mod] = np.array(rows, dtype=bool)
    return PerceptualResult(ids=[c.id for c in clips], condition=_meta(clips, "condition"), gold=gold,
                            correct=base, correct_perm=out, mode=mode)


# ============================================================================== CLI


def add_attribute_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench attribute``."""
    parser.add_argument("--model", required=True, help="checkpoint folder to attribute")
    parser.add_argument("--manifest", required=True, help="manifest JSONL")
    parser.add_argument("--split", required=True, help="split (e.g. test_id)")
    parser.add_argument("--strategy", default="drop", choices=STRATEGIES, help="how a modality is removed")
    parser.add_argument("--target", default="prediction", choices=["prediction", "gold"], help="label attributed")
    parser.add_argument("--value", default="prob", choices=VALUES, help="prob (among labels) | logprob")
    parser.add_argument("--position", default="auto", choices=POSITIONS,
                        help="where <answer>label</answer> is scored (auto: regenerate for a reasoning model, else prompt)")
    parser.add_argument("--players", default="video,audio", help="video,audio or video,audio,text")
    parser.add_argument("--out", default=None, help="output folder (default: the model folder's parent)")
    parser.add_argument("--predictions", default=None,
                        help="predictions JSONL from `omnibench eval` (answers + reasoning; skips generation)")
    parser.add_argument("--no-generate", action="store_true",
                        help="do not generate reasoning (no faithfulness; target = argmax of label scores)")
    parser.add_argument("--cross-check", type=int, default=0,
                        help="also run the generation-based variant on the first N clips and report agreement")
    parser.add_argument("--perceptual", type=int, default=0, help="perceptual score with N permutations (0 = skip)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--cache", default=None, help="decode cache folder")
    parser.add_argument("--dataset", default=None, help="label set (data card name; default: DFEW's seven)")
    return parser


def cli_attribute(args: argparse.Namespace) -> int:
    """``omnibench attribute``: writes ``attribution.jsonl``, ``attribution_summary.json`` and merges the
    summary into ``metrics.json`` under "attribution". Returns the exit status (0)."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import DecodeCache, DecodeConfig, decode_clips
    from omnibench.evaluate import _atomic_write, _model_labels, default_run_dir, update_metrics_json
    from omnibench.model import generate, load_model
    from omnibench.model.inputs import ALL, DEFAULT_PROMPT

    model, processor = load_model(args.model)
    model.eval()
    labels = _model_labels(model, getattr(args, "dataset", None))
    clips = read_manifest(args.manifest, split=args.split)
    if not clips:
        raise SystemExit(f"{args.manifest}: no clips in split {args.split!r}")
    if args.limit:
        clips = clips[: args.limit]
    out = Path(args.out) if args.out else default_run_dir(args.model)
    media, _ = decode_clips(clips, DecodeConfig(), cache=DecodeCache(args.cache) if args.cache else None)
    position = "prompt" if (args.no_generate and args.position == "auto") else args.position
    cfg = AttributionConfig(players=tuple(args.players.split(",")), strategy=args.strategy, value=args.value,
                            target=args.target, position=position, batch_size=args.batch_size, seed=args.seed,
                            max_new_tokens=args.max_new_tokens)
    completions = None
    t0 = time.perf_counter()
    if args.predictions:
        with open(args.predictions, encoding="utf-8") as f:
            recs = {r["id"]: r for r in map(json.loads, filter(str.strip, f))}
        lost = [c.id for c in clips if c.id not in recs]
        if lost:
            raise SystemExit(f"{args.predictions}: no prediction for {len(lost)} clip(s), e.g. {lost[:3]}")
        completions = [recs[c.id].get("completion") or "" for c in clips]
    elif not args.no_generate:
        completions = generate(model, processor, media, ALL, prompt=DEFAULT_PROMPT, max_new_tokens=args.max_new_tokens,
                               batch_size=args.batch_size)
    t_gen = time.perf_counter() - t0
    res = attribute(model, processor, clips, media, labels=labels, config=cfg, completions=completions, progress=True)
    path = res.save(out / "attribution.jsonl")
    summary = res.summary()
    summary["method"]["generate_seconds"] = t_gen
    if args.cross_check:
        k = min(args.cross_check, len(clips))
        t1 = time.perf_counter()
        score_sub = attribute(model, processor, clips[:k], media[:k], labels=labels, config=cfg,
                              completions=completions[:k] if completions is not None else None,
                              predictions=res.prediction[:k])
        t_score = time.perf_counter() - t1
        gen = attribute_generate(model, processor, clips[:k], media[:k], labels=labels, config=cfg,
                                 targets=res.target[:k], max_new_tokens=args.max_new_tokens)
        agr = dominant_agreement(score_sub, gen)
        summary["cross_check"] = {**agr, "n_clips": k, "score_seconds": t_score, "generate_seconds": gen.seconds,
                                  "time_ratio": gen.seconds / max(t_score, 1e-9)}
    if args.perceptual:
        pr = perceptual_score(model, processor, clips, media, labels=labels, n_perm=args.perceptual, seed=args.seed,
                              batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                              mode="score" if res.position == "prompt" else "generate")
        summary["perceptual"] = pr.summary().to_dict(orient="records")
    from omnibench.evaluate import _json_safe

    _atomic_write(out / "attribution_summary.json", json.dumps(_json_safe(summary), indent=2) + "\n")
    update_metrics_json(out / "metrics.json", {"attribution": {"validation": summary["validation"],
                                                               **({"faithfulness": summary["faithfulness"]}
                                                                  if "faithfulness" in summary else {})}})
    v = summary["validation"]
    print(f"attribution ({cfg.strategy}, {cfg.value}, target={cfg.target}, position={res.position}): {len(res)} clips")
    for mod, d in v.items():
        print(f"  validation {mod}: n={d['n']} share_ok={d['share_ok']:.3f}")
    if "faithfulness" in summary:
        print(f"  faithfulness: agreement={summary['faithfulness']['agreement']:.3f} "
              f"correlation={summary['faithfulness']['correlation']:.3f}")
    if "cross_check" in summary:
        c = summary["cross_check"]
        print(f"  scoring vs generation: dominant-modality agreement={c['agreement']:.3f} on {c['n']} clips "
              f"without a tie; generation-based took {c['time_ratio']:.2f}x the scoring time")
    print(f"written: {path}, {out / 'attribution_summary.json'}, {out / 'metrics.json'}")
    return 0
