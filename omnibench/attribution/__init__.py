"""Measured modality attribution: exact Shapley values over {video, audio} (optionally the text prompt).

R1-Omni reads modality contributions off its generated reasoning. Here they are measured: for a clip
and a fixed *target* label, a value function ``v(S)`` scores the target with the players outside
``S`` removed, and exact Shapley values split ``v(all) - v(none)`` between the players. One job per
module, the pure parts apart from the model-bound ones (like captum's ``attr/_core``):

* :mod:`~omnibench.attribution.shapley` -- coalitions, exact Shapley values, shares, the dominant
  modality, values from label scores (pure maths);
* :mod:`~omnibench.attribution.cues` -- cue counts in the reasoning (with the cue lexicons of
  :mod:`omnibench.data.lexicons`), stated shares and their faithfulness to the measured ones;
* :mod:`~omnibench.attribution.result` -- :class:`AttributionResult` (parallel arrays, ``to_frame``,
  summaries, the SynthEmo validation and its selection, example clips, subsets, save/load);
* :mod:`~omnibench.attribution.removal` -- the removal strategies (``drop``, ``black``, ``noise``,
  ``swap``: :data:`STRATEGIES`, :func:`apply_removal`) and a coalition's inputs (:func:`coalition_inputs`);
* :mod:`~omnibench.attribution.value` -- :class:`AttributionConfig`, the one loop over coalitions
  (:func:`over_coalitions`) and the model-bound value functions (:func:`attribute`,
  :func:`attribute_generate`), with the scoring positions documented there;
* :mod:`~omnibench.attribution.perceptual` -- the perceptual score (accuracy drop when one modality
  is permuted across the split);

Bootstrap CIs come from :mod:`omnibench.stats` (the module evaluation uses too). Nothing here imports
torch or the model until a model-bound function runs, and every name is importable from the package.
"""

from __future__ import annotations

from omnibench.attribution.cues import (
    cue_counts,
    faithfulness,
    reasoning_text,
    stated_shares,
)
from omnibench.attribution.perceptual import PerceptualResult, perceptual_from_correct, perceptual_score
from omnibench.attribution.removal import STRATEGIES, apply_removal, coalition_inputs, derangement
from omnibench.attribution.result import AttributionResult, dominant_agreement
from omnibench.attribution.shapley import (
    MODALITIES,
    VALUES,
    coalitions,
    dominant,
    exact_shapley,
    shapley_matrix,
    shares,
    values_from_scores,
)
from omnibench.attribution.value import (
    POSITIONS,
    AttributionConfig,
    Coalition,
    attribute,
    attribute_generate,
    coalition_scores,
    over_coalitions,
    resolve_position,
)

__all__ = [
    "MODALITIES",
    "POSITIONS",
    "STRATEGIES",
    "VALUES",
    "AttributionConfig",
    "AttributionResult",
    "Coalition",
    "PerceptualResult",
    "apply_removal",
    "attribute",
    "attribute_generate",
    "coalition_inputs",
    "coalition_scores",
    "coalitions",
    "cue_counts",
    "derangement",
    "dominant",
    "dominant_agreement",
    "exact_shapley",
    "faithfulness",
    "over_coalitions",
    "perceptual_from_correct",
    "perceptual_score",
    "reasoning_text",
    "resolve_position",
    "shapley_matrix",
    "shares",
    "stated_shares",
    "values_from_scores",
]
