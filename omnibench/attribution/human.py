"""Measured modality attribution against human perception (CREMA-D votes, RAVDESS ratings).

People rated CREMA-D's clips (and RAVDESS's files) from the voice alone, the face alone and both
together; the indexers put the proportion of raters who recognised the intended emotion in each
clip's ``meta["human_rates"]`` (``{"voice", "face", "both"}``, see
:func:`omnibench.data.indexers.common.human_meta`). :func:`human_reference` sets the measured Shapley
shares of an :class:`~omnibench.attribution.AttributionResult` beside them:

* **correlation** -- Pearson r, over clips with both a face-only and a voice-only rate and finite
  shares, between the measured ``share_video - share_audio`` and the human ``face - voice``
  recognition rate, with a seeded percentile-bootstrap 95% CI over clips. Why the difference of the
  shares rather than the video share alone: it is on the same signed scale as the human difference
  (positive = the face / video carries more), and it is the video-vs-audio contrast whatever else
  is a player -- with the text prompt as a third player the video share also moves with the text's
  share, the difference does not. With only the players video and audio and non-negative Shapley
  values the shares sum to 1, the difference is ``2 * share_video - 1`` and r is the same for both.
* **dominant** -- on clips where humans clearly favour one modality (face and voice rates more than
  ``margin`` apart, :func:`~omnibench.data.indexers.common.human_dominant`), how often the measured
  dominant modality (:meth:`AttributionResult.dominant`, the larger Shapley value) is the same one
  (face <-> video, voice <-> audio). Clips whose measured dominant modality is undefined (a tie or NaN)
  are left out of the rate and counted.
* **recognition** -- per presentation the mean human recognition rate over the attributed clips
  (with a bootstrap CI), beside the model's accuracy on the matching single-modality evaluation when
  given (``model_accuracy``: video <-> face, audio <-> voice, both <-> both), and CREMA-D's published
  figures (:data:`CREMAD_PUBLISHED`).

Pure numpy (no torch, no model); the result is JSON-safe (NaN -> None) for ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from omnibench.data.indexers.common import HUMAN_MARGIN, PRESENTATIONS, human_dominant
from omnibench.io import json_safe
from omnibench.stats import bootstrap_mean_ci, bootstrap_pearson

__all__ = ["CREMAD_PUBLISHED", "HUMAN_MARGIN", "MODEL_MODALITY", "human_rates", "human_reference", "reference_rows"]

#: CREMA-D's human recognition rates of the intended emotion over all clips, per presentation, as
#: published in Cao, Cooper, Keutmann, Gur, Nenkova, Verma (2014), "CREMA-D: Crowd-sourced Emotional
#: Multimodal Actors Dataset", IEEE Transactions on Affective Computing 5(4): 377-390
#: (doi:10.1109/TAFFC.2014.2336244): 40.9% voice only, 58.2% face only, 63.6% audio-visual.
#: (The repository's processedResults/tabulatedVotes.csv gives 39.7% / 57.2% / 62.9% as the mean
#: over clips, after its filtering of responses slower than 10 s.)
CREMAD_PUBLISHED = {"voice": 0.409, "face": 0.582, "both": 0.636}
CREMAD_SOURCE = ("Cao et al. 2014, CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset, "
                 "IEEE Trans. Affective Computing 5(4):377-390")

#: Human presentation -> the modality key of the model's single-modality evaluation.
MODEL_MODALITY = {"voice": "audio", "face": "video", "both": "both"}
_HUMAN_OF = {"face": "video", "voice": "audio"}


def human_rates(clips: Sequence, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) human recognition rates (columns :data:`PRESENTATIONS`, NaN where missing) for ``ids``,
    and an (n,) bool: the clip is in ``clips`` (looked up by id)."""
    by_id = {c.id: c for c in clips}
    out = np.full((len(ids), len(PRESENTATIONS)), np.nan)
    found = np.zeros(len(ids), bool)
    for i, cid in enumerate(ids):
        clip = by_id.get(cid)
        if clip is None:
            continue
        found[i] = True
        rates = (clip.meta or {}).get("human_rates") or {}
        for j, p in enumerate(PRESENTATIONS):
            v = rates.get(p)
            if v is not None:
                out[i, j] = float(v)
    return out, found


def human_reference(
    result,
    clips: Sequence,
    model_accuracy: Mapping[str, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    margin: float = HUMAN_MARGIN,
) -> dict:
    """The measured shares of ``result`` against the human recognition rates of ``clips`` (module doc).

    Args:
        result: an :class:`~omnibench.attribution.AttributionResult` with players ``video`` and
            ``audio`` (others, e.g. ``text``, are allowed and ignored).
        clips: the manifest clips (:class:`~omnibench.data.manifest.Clip`), matched to ``result.ids``
            by id; their ``meta["human_rates"]`` as the CREMA-D / RAVDESS indexers write it.
        model_accuracy: optional ``{"video": acc, "audio": acc, "both": acc}`` of the model's
            single-modality evaluation (accuracy in [0, 1]); missing keys give None.
        n_boot, seed: bootstrap resamples and seed (the CI of r and of the mean human rates).
        margin: humans "clearly favour" a modality when its rate is higher by more than this.

    Returns a JSON-safe dict (NaN as None)::

        {"n_clips": attributed clips,
         "n_with_human": clips with a face-only and a voice-only rate (the ones compared),
         "n_without_human": the others, "without": {"not_in_manifest", "no_rates", "partial"},
         "margin": margin,
         "correlation": {"x": "share_video - share_audio", "y": "human face - voice rate",
                         "method": "pearson", "r", "ci": [lo, hi], "n", "n_undefined_share",
                         "n_boot", "n_boot_undefined", "seed"},
         "dominant": {"n": clips with a clear human and a defined measured dominant modality,
                      "agreement": rate (None when n == 0), "n_agree",
                      "n_human_clear", "n_human_face", "n_human_voice", "n_model_undefined"},
         "recognition": {"voice" | "face" | "both": {"human", "human_ci": [lo, hi], "n",
                         "model_modality": "audio" | "video" | "both", "model",
                         "published_cremad"}},
         "published_cremad": {"voice": 0.409, "face": 0.582, "both": 0.636, "source": "..."}}
    """
    for p in ("video", "audio"):
        if p not in result.players:
            raise ValueError(f"human_reference needs the players video and audio, got {result.players}")
    if model_accuracy is not None:
        unknown = set(model_accuracy) - set(MODEL_MODALITY.values())
        if unknown:
            raise ValueError(f"model_accuracy keys must be among {sorted(MODEL_MODALITY.values())}, "
                             f"got {sorted(unknown)}")
    ids = list(result.ids)
    rates, found = human_rates(clips, ids)
    col = {p: j for j, p in enumerate(PRESENTATIONS)}
    face, voice = rates[:, col["face"]], rates[:, col["voice"]]
    have = ~np.isnan(face) & ~np.isnan(voice)
    any_rate = ~np.isnan(rates).all(axis=1)

    # correlation: measured video - audio share vs human face - voice rate
    d_model = result.share_of("video") - result.share_of("audio")
    d_human = face - voice
    use = have & np.isfinite(d_model)
    r, ci, n_bad = bootstrap_pearson(d_model[use], d_human[use], n_boot, seed)
    correlation = {
        "x": "share_video - share_audio", "y": "human face - voice rate", "method": "pearson",
        "r": r, "ci": ci, "n": int(use.sum()), "n_undefined_share": int((have & ~np.isfinite(d_model)).sum()),
        "n_boot": int(n_boot), "n_boot_undefined": n_bad, "seed": int(seed),
    }

    # dominant modality where humans clearly favour one
    measured = result.dominant()
    n_clear = n_face = n_voice = n_undef = n_agree = 0
    for i in np.flatnonzero(have):
        hd = human_dominant(face[i], voice[i], margin)
        if hd is None:
            continue
        n_clear += 1
        n_face += hd == "face"
        n_voice += hd == "voice"
        if measured[i] is None:
            n_undef += 1
            continue
        n_agree += measured[i] == _HUMAN_OF[hd]
    n_dom = n_clear - n_undef
    dominant = {
        "n": n_dom, "agreement": n_agree / n_dom if n_dom else float("nan"), "n_agree": n_agree,
        "n_human_clear": n_clear, "n_human_face": n_face, "n_human_voice": n_voice,
        "n_model_undefined": n_undef,
    }

    # recognition rates per presentation, humans beside the model
    recognition = {}
    for p in PRESENTATIONS:
        x = rates[:, col[p]]
        m, lo, hi = bootstrap_mean_ci(x, n_boot=n_boot, seed=seed)
        acc = None if model_accuracy is None else model_accuracy.get(MODEL_MODALITY[p])
        recognition[p] = {
            "human": m, "human_ci": [lo, hi], "n": int((~np.isnan(x)).sum()),
            "model_modality": MODEL_MODALITY[p], "model": None if acc is None else float(acc),
            "published_cremad": CREMAD_PUBLISHED[p],
        }

    n = len(ids)
    return json_safe({
        "n_clips": n,
        "n_with_human": int(have.sum()),
        "n_without_human": int(n - have.sum()),
        "without": {
            "not_in_manifest": int((~found).sum()),
            "no_rates": int((found & ~any_rate).sum()),
            "partial": int((any_rate & ~have).sum()),
        },
        "margin": float(margin),
        "correlation": correlation,
        "dominant": dominant,
        "recognition": recognition,
        "published_cremad": {**CREMAD_PUBLISHED, "source": CREMAD_SOURCE},
    })


def reference_rows(sections: Mapping[str, Mapping]) -> tuple[list[dict], list[dict]]:
    """``metrics.json``'s ``attribution.human_reference`` (split -> :func:`human_reference`) as table rows
    for the report and the notebook: one row per split (clips with human rates, Pearson r with its CI,
    dominant-modality agreement) and one per (split, presentation) (human rate beside the model's
    single-modality accuracy and CREMA-D's published figure)."""
    summary, recognition = [], []
    for split, h in sections.items():
        c, d = h.get("correlation") or {}, h.get("dominant") or {}
        summary.append({"split": split, "n_with_human": h.get("n_with_human"), "n_without_human": h.get("n_without_human"),
                        "r": c.get("r"), "r_lo": (c.get("ci") or [None, None])[0], "r_hi": (c.get("ci") or [None, None])[1],
                        "n_r": c.get("n"), "agreement": d.get("agreement"), "n_clear": d.get("n")})
        for p, rec in (h.get("recognition") or {}).items():
            recognition.append({"split": split, "presentation": p, "human": rec.get("human"), "n": rec.get("n"),
                                "model_input": rec.get("model_modality"), "model": rec.get("model"),
                                "published_cremad": rec.get("published_cremad")})
    return summary, recognition
