"""Perceptual score: how much accuracy is lost when one modality is permuted across the split.

A model-agnostic complement to the Shapley attribution (Gat et al.'s perceptual score): each clip
gets another clip's video (or audio) by a seeded derangement, and the accuracy drop says how much
the answers depend on that modality. :func:`perceptual_from_correct` is the pure statistic (bootstrap
CI over clips, :mod:`omnibench.stats`); :func:`perceptual_score` runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omnibench.answers import resolve, resolve_gold
from omnibench.attribution.removal import derangement
from omnibench.attribution.shapley import MODALITIES
from omnibench.attribution.value import media_for, over_coalitions, resolve_position
from omnibench.labels import DFEW7
from omnibench.stats import bootstrap_mean_ci

__all__ = ["PerceptualResult", "perceptual_from_correct", "perceptual_score"]


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
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT, available_modalities

    labels = tuple(labels)
    prompt = prompt if prompt is not None else DEFAULT_PROMPT
    clips, media = media_for(clips, media)
    gold = [resolve_gold(c.label, labels) for c in clips]  # an unlabelled / out-of-set clip is never right
    gold = [g.label if g.status not in ("missing", "out_of_set") else None for g in gold]

    def predict(media_s, mods_s, how):
        if how == "score":
            sc = score_labels(model, processor, media_s, mods_s, list(labels), prompt=prompt, batch_size=batch_size)
            return [labels[i] for i in np.asarray(sc).argmax(axis=1)], None
        comps = generate(model, processor, media_s, mods_s, prompt=prompt, max_new_tokens=max_new_tokens,
                         batch_size=batch_size)
        return [resolve(c, labels).label for c in comps], comps

    full_mods = [available_modalities(m) for m in media]
    pred, comps = predict(media, full_mods, "generate" if mode == "auto" else mode)
    if mode == "auto":
        mode = "generate" if resolve_position(comps) == "regenerate" else "score"
        if mode == "score":
            pred, _ = predict(media, full_mods, "score")
    base = np.array([g is not None and p == g for p, g in zip(pred, gold)])
    rng = np.random.default_rng(seed)
    perms = [derangement(len(media), rng) for _ in range(n_perm)]

    def correct(c) -> list[bool]:
        return [g is not None and p == g for p, g in zip(predict(c.media, full_mods, mode)[0], gold)]

    out = {}
    for mod in modalities:  # the coalition of every modality but ``mod``, which is swapped in from another clip
        rows = []
        for perm in perms:
            rows += over_coalitions(media, correct, strategy="swap", seed=seed, prompt=prompt,
                                    coalition_list=[frozenset(MODALITIES) - {mod}], donors=perm)
        out[mod] = np.array(rows, dtype=bool)
    condition = [(c.meta or {}).get("condition") for c in clips]
    return PerceptualResult(ids=[c.id for c in clips], condition=condition, gold=gold, correct=base,
                            correct_perm=out, mode=mode)
