"""The attribution result: per-clip arrays in parallel, and everything read off them.

:class:`AttributionResult` holds one model x split x strategy x value x target: coalition values,
Shapley values and shares per clip, with the labels and SynthEmo conditions alongside. Summaries
(mean shares per class / condition with bootstrap CIs), the SynthEmo validation test, reasoning-cue
faithfulness, the example-clip choice, subsets and ``attribution.jsonl`` I/O are methods here, so a
notebook, the dashboard, the report and the CLI all ask the result instead of re-deriving selections.

Validation
    Among clips of condition video (resp. audio) with a non-neutral gold label that the model
    classifies correctly (:meth:`AttributionResult.validation_mask`), the informative modality should
    get a Shapley share above 0.5. NaN shares (no player changes the value) count as not ok.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnibench.attribution.cues import faithfulness, stated_shares
from omnibench.attribution.shapley import MODALITIES, coalitions, dominant
from omnibench.io import read_jsonl, write_jsonl
from omnibench.stats import bootstrap_mean_ci

__all__ = ["AttributionResult", "dominant_agreement"]


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

    def validation_mask(self, modality: str, neutral: str = "neutral") -> np.ndarray:
        """(n,) bool: the clips the validation test uses for ``modality`` -- condition ``modality``
        (the emotion is in that modality only), a gold label that is not ``neutral``, answered correctly."""
        if modality not in MODALITIES:
            raise ValueError(f"validation is defined for {MODALITIES}, got {modality!r}")
        cond = np.array([c if c is not None else "" for c in self.condition], dtype=object)
        gold = np.array([g if g is not None else "" for g in self.gold], dtype=object)
        return (cond == modality) & (gold != neutral) & (gold != "") & self.correct

    def validation(self, neutral: str = "neutral", min_effect: float = 0.05) -> dict:
        """The SynthEmo ground-truth check, per informative modality (video, audio).

        Among the clips of :meth:`validation_mask` (condition video (resp. audio), non-neutral gold,
        answered correctly): ``n`` and ``share_ok`` = fraction whose informative modality has share
        > 0.5 (NaN shares count as not ok; ``share_ok`` is NaN when ``n == 0``).

        Diagnostics: ``n_undefined`` (NaN shares); ``n_media_relevant`` = those clips whose total
        attribution ``sum |phi|`` is at least ``min_effect`` (in value units: 0.05 of probability
        for ``value="prob"``) and ``share_ok_media_relevant`` among them. A correct answer the model
        also gives with no media at all (its prior guess) has ``sum |phi| ~ 0``: its shares are noise
        and say nothing about the method.
        """
        out = {}
        effect = np.nansum(np.abs(self.phi), axis=1)
        for mod in MODALITIES:
            if mod not in self.players:
                continue
            sel = self.validation_mask(mod, neutral)
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

    def pick_examples(self, n: int = 3, conditions: Sequence[str] = ("video", "audio", "both"),
                      neutral: str = "neutral") -> list[str]:
        """Up to ``n`` clip ids for an example figure: correctly answered clips, one per condition in
        turn (non-neutral gold first), then any clip."""
        correct = self.correct
        chosen: list[str] = []
        for cond in list(conditions) * n:
            for i, cid in enumerate(self.ids):
                if cid in chosen or not correct[i] or self.condition[i] != cond or self.gold[i] == neutral:
                    continue
                chosen.append(cid)
                break
            if len(chosen) >= n:
                return chosen
        for cid in self.ids:
            if len(chosen) >= n:
                break
            if cid not in chosen:
                chosen.append(cid)
        return chosen

    def subset(self, mask) -> AttributionResult:
        """The clips selected by a boolean mask (or an index array), as a new result."""
        mask = np.asarray(mask)
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask.astype(np.int64)
        if mask.dtype == bool and len(mask) != len(self):
            raise ValueError(f"mask has {len(mask)} entries, the result {len(self)} clips")
        kw = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == len(self):
                kw[f.name] = v[idx]
            elif isinstance(v, list) and len(v) == len(self):
                kw[f.name] = [v[i] for i in idx]
            else:
                kw[f.name] = v
        return type(self)(**kw)

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
        """Write ``attribution.jsonl`` (one clip per line; NaN as null), atomically."""
        return write_jsonl(path, self.records())

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttributionResult:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"attribution file {path} not found (write one with `omnibench attribute`)")
        recs = read_jsonl(path)
        if not recs:
            raise ValueError(f"{path} holds no attribution records")
        return cls.from_records(recs)

    @classmethod
    def from_records(cls, recs: Sequence[Mapping]) -> AttributionResult:
        """The result back from its :meth:`records` (JSON floats round-trip exactly; null is NaN)."""
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

