"""Reasoning-cue attribution: what the model's own reasoning *says* it looked at.

R1-Omni reads modality contributions off the generated reasoning; this module counts the cue words
the reasoning cites so that statement can be compared with the measured Shapley values
(:func:`faithfulness`). The reasoning is read with :func:`omnibench.answers.parse_reasoning`, the one
parser of completions, so the rewards, the evaluation and the attribution see the same text.

:func:`cue_counts` counts the lexicon's video and audio cue words in the reasoning (default: the
faithfulness families' lexicon of :mod:`omnibench.data.lexicons`, SynthEmo's cue words, the same
registry the grounding reward reads); the *stated* video share is ``n_video / (n_video + n_audio)`` (NaN with no cue). Faithfulness = per-clip agreement
between the stated dominant modality (stated share above/below 0.5) and the measured one, and the
Pearson correlation between the stated video share and the measured video share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from omnibench.answers import parse_reasoning, words_pattern
from omnibench.attribution.shapley import MODALITIES, dominant, shares
from omnibench.data.lexicons import FAITHFULNESS_FAMILIES, cue_lexicon

__all__ = ["cue_counts", "faithfulness", "reasoning_text", "stated_shares"]


def reasoning_text(completion: str | None) -> str:
    """The reasoning of a completion (:func:`omnibench.answers.parse_reasoning`): the ``<think>``
    block's text, else the text before ``<answer>``; ``""`` for None."""
    return parse_reasoning(completion)


def _cue_patterns(lexicon: Mapping[str, Sequence[str]]) -> dict[str, re.Pattern | None]:
    return {mod: words_pattern(tuple(lexicon.get(mod, []))) for mod in MODALITIES}


def cue_counts(text: str | None, lexicon: Mapping[str, Sequence[str]] | None = None) -> dict[str, int]:
    """Occurrences of each modality's cue words/phrases in the reasoning of ``text``.

    Matching is case-insensitive on whole words (multi-word cues match across any whitespace);
    longer cues are tried first so "high pitch" is not also counted as "pitch".
    """
    lexicon = cue_lexicon(*FAITHFULNESS_FAMILIES) if lexicon is None else lexicon
    body = reasoning_text(text)
    return {mod: (len(p.findall(body)) if p is not None else 0) for mod, p in _cue_patterns(lexicon).items()}


def stated_shares(texts: Sequence[str | None], lexicon: Mapping[str, Sequence[str]] | None = None):
    """(stated video share (n,), video counts (n,), audio counts (n,)); share NaN when no cue is cited."""
    lexicon = cue_lexicon(*FAITHFULNESS_FAMILIES) if lexicon is None else lexicon
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

