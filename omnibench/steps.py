"""Notebook-facing steps that bind the run folder to the model and training layers.

Why a module of its own: a notebook cell should be one call, and some of those calls need both the
run-folder layout (:mod:`omnibench.run`) and the model layer (building and saving the tiny base
model) or the training logs. :mod:`omnibench.run` must stay below the model layer (the ``eval`` and
``attribute`` CLIs import it for their default output places) and ``model/perception.py`` should not
know the run folder, so these steps live here, above both; the pipeline runner does not need them.

* :func:`save_base_model` — the run's ``base`` checkpoint (tiny thinker, perception-pretrained; or a
  real model folder, registered without copying).
* :func:`perception_summary` / :func:`training_summary` — what ``metrics.json`` keeps of a training
  log (``training`` section).
* :func:`run_vocabulary` — the labels a tiny base model is built to answer in: the union of the label
  sets of the splits the run trains on (``params.yaml``).
* :func:`usable_manifest` — the manifest a training stage reads, without the clips whose media do not
  decode (``on_error="skip"``: listed in ``skipped.jsonl``; ``"error"``: the first one stops the stage).
* :func:`evaluate_checkpoints` / :func:`subset_table` — every checkpoint on every split, each split
  scored against its own dataset's label set, undecodable clips skipped and counted; the 7-class
  subset figures beside the full-label ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from omnibench.io import read_jsonl
from omnibench.run import RunFolder

__all__ = [
    "evaluate_checkpoints", "perception_summary", "run_vocabulary", "save_base_model", "subset_table",
    "training_summary", "usable_manifest",
]


def save_base_model(run: RunFolder, model: str = "tiny", seed: int = 0, tiny: Mapping | None = None,
                    labels: Sequence[str] | None = None, perception: Mapping | None = None,
                    decode: Mapping | None = None, split: str | Sequence[str] = "train", progress: bool = False,
                    manifest: str | os.PathLike | None = None) -> Path:
    """The base checkpoint of the run, saved to ``checkpoints/base/model``.

    ``model="tiny"``: the embedded tiny thinker, built from scratch, then pre-trained on the run's
    ``split`` (:func:`omnibench.model.perception.build_tiny_base`; ``perception`` holds
    :class:`~omnibench.model.perception.PerceptionConfig` fields, ``{"steps": 0, "describe_steps": 0}``
    skips it) so that the base model, like a real omni model, starts with working perception and no
    emotion answer. The history goes to ``checkpoints/base/perception.jsonl``. Any other ``model`` is a
    local model folder, registered without copying (its encoders are already trained). ``manifest``:
    the clips to pre-train on (default the run's; :func:`usable_manifest` gives one without the clips
    whose media do not decode); ``split`` may list several splits."""
    log_path = run.train_dir("base") / "perception.jsonl"
    log_path.unlink(missing_ok=True)  # a re-run's old history
    if model == "tiny":
        from omnibench.labels import DFEW7
        from omnibench.model import build_tiny, save_model
        from omnibench.model.perception import PerceptionConfig, build_tiny_base

        cfg = PerceptionConfig(**{"seed": seed, **dict(perception or {})})
        out = run.checkpoint("base")
        if cfg.steps or cfg.describe_steps:
            return build_tiny_base(manifest or run.manifest, out, split=split, seed=seed, config=cfg, decode=decode, tiny=tiny,
                                   labels=labels, cache_dir=run.decode_cache_dir, progress=progress,
                                   log_path=log_path)
        m, processor = build_tiny(labels=tuple(labels or DFEW7), seed=seed, **dict(tiny or {}))
        save_model(m, processor, out, decode=decode)
        return out
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model folder {path} has no config.json; give a local Qwen2.5-Omni folder or 'tiny'")
    return run.register_checkpoint("base", path)


def perception_summary(log: str | os.PathLike) -> dict:
    """Per stage of the tiny base model's pre-training (``towers``, ``describe``): steps and the last
    logged row's loss and read-out accuracies."""
    out: dict = {}
    for row in read_jsonl(log):
        stage = row.get("stage", "towers")
        out[stage] = {k: v for k, v in row.items() if k not in ("stage", "learning_rate")}
    return out


def training_summary(metrics_jsonl: str | os.PathLike, keys: Sequence[str] = ("loss",), frac: float = 0.1) -> dict:
    """Steps, and the mean of each key over the first and last ``frac`` of the logged steps."""
    import pandas as pd

    from omnibench.plots import read_metrics_jsonl

    df = read_metrics_jsonl(metrics_jsonl)
    out: dict = {"steps": int(df["step"].max()) if "step" in df and len(df) else 0}
    if "train_runtime" in df:
        out["seconds"] = float(df["train_runtime"].dropna().iloc[-1]) if df["train_runtime"].notna().any() else None
    for k in keys:
        if k not in df:
            continue
        col = pd.to_numeric(df[k], errors="coerce").dropna()
        if col.empty:
            continue
        m = max(1, round(len(col) * frac))
        out[k] = {"first": float(col.iloc[:m].mean()), "last": float(col.iloc[-m:].mean())}
    return out


# --------------------------------------------------------------------------------------------------
# Several datasets: vocabulary, undecodable clips, evaluation per split
# --------------------------------------------------------------------------------------------------


def _as_list(splits) -> list[str]:
    """A split name or a (nested) list of them, as a flat list without repeats."""
    if isinstance(splits, str):
        return [splits]
    out: list[str] = []
    for s in splits or []:
        out += [x for x in _as_list(s) if x not in out]
    return out


def run_vocabulary(run: RunFolder, splits: Sequence[str] | str = ()) -> tuple[str, ...] | None:
    """The labels a tiny base model of this run answers in: the union of the label sets of the splits
    the run trains on (:meth:`RunFolder.training_splits` from ``params.yaml``, plus ``splits``), DFEW's
    seven first (:func:`omnibench.data.summary.label_union`). None when that union is the DFEW seven
    (SynthEmo: the tiny model's default, unchanged)."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.summary import label_union
    from omnibench.labels import DFEW7

    wanted = list(dict.fromkeys(run.training_splits() + _as_list(splits)))
    clips = read_manifest(run.manifest, split=wanted, check_media=False)
    labels = label_union(clips, base=DFEW7)
    return None if labels == DFEW7 else labels


def usable_manifest(run: RunFolder, stage: str, splits: Sequence[str] | str, model: str | os.PathLike | None = None,
                    decode: Mapping | None = None, on_error: str = "skip", max_clips: int | None = None,
                    progress: bool = False) -> Path:
    """The manifest a training stage reads: ``run.manifest`` when every clip of ``splits`` (the first
    ``max_clips``) decodes, else ``data/<stage>.jsonl`` without the clips that do not, which are
    recorded in ``skipped.jsonl`` (stage, split, id, reason) and printed. Clips are decoded with the
    settings the stage trains with (``model``'s checkpoint settings overridden by ``decode``; the
    DecodeConfig defaults for a model built from scratch) through the run's decode cache, so training
    reads them back without decoding again. ``on_error="error"``: the first undecodable clip raises."""
    from omnibench.data.manifest import read_manifest, write_manifest
    from omnibench.data.media import DecodeConfig, MediaStore, decode_config_for

    cfg = decode_config_for(model, decode, warn=False) if model not in (None, "tiny") else DecodeConfig.coerce(decode)
    store = MediaStore([], cfg, run.decode_cache, on_error=on_error)
    for split in _as_list(splits):
        clips = read_manifest(run.manifest, split=split)
        before = set(store.skipped)
        if max_clips:  # the first max_clips usable clips (what the stage's max_clips then takes)
            n_ok = 0
            for c in clips:
                if n_ok >= max_clips:
                    break
                n_ok += len(store.usable([c]))
        else:
            store.usable(clips, progress=progress)
        mine = {k: v for k, v in store.skipped.items() if k not in before}
        run.record_skipped(stage, split, mine)
        if mine:
            print(f"{stage}: skipped {len(mine)} of {len(clips)} clips of {split} whose media do not decode "
                  f"(listed in {run.skipped_path}): {', '.join(list(mine)[:5])}")
    if not store.skipped:
        return run.manifest
    keep = [c for c in read_manifest(run.manifest) if c.id not in store.skipped]
    return write_manifest(keep, run.data / f"{stage}.jsonl")


def evaluate_checkpoints(run: RunFolder, checkpoints: Mapping[str, os.PathLike], clips: Mapping[str, Sequence],
                         config=None, decode: Mapping | None = None, on_error: str = "skip",
                         stage: str = "evaluate", load: Mapping | None = None) -> list:
    """Every checkpoint on every split: each split scored against its own dataset's label set
    (:func:`omnibench.labels.labels_for`; the model's labels for a dataset without a card), decoded with
    the checkpoint's settings (``decode`` overriding them) through the run's cache; clips whose media
    do not decode are left out (``on_error="skip"``), printed, listed in ``skipped.jsonl`` and counted in
    ``metrics.json`` (``skipped -> stage -> split``). ``load``: :func:`~omnibench.model.load_model` keywords
    (device, dtype, attention). Predictions go to ``predictions/``. Returns the
    :class:`~omnibench.evaluate.EvalResult` s, checkpoint by checkpoint."""
    from omnibench.data.media import MediaStore, decode_config_for
    from omnibench.evaluate import evaluate_split, model_labels
    from omnibench.labels import labels_for
    from omnibench.model import load_model

    results = []
    skipped: dict[str, dict] = {}
    for name, path in checkpoints.items():
        model, processor = load_model(path, **dict(load or {}))
        store = MediaStore([], decode_config_for(model, decode), run.decode_cache, on_error=on_error)
        print(f"{name}: decode {store.config.describe()}")
        for split, part in clips.items():
            usable = store.usable(part)
            lost = {c.id: store.skipped[c.id] for c in part if c.id in store.skipped}
            skipped.setdefault(split, {}).update(lost)  # the union over checkpoints (their settings may differ)
            labels = labels_for(part, default=model_labels(model))
            res = evaluate_split(model, processor, usable, store.decode(usable), labels=labels, config=config,
                                 checkpoint=name, split=split)
            res.write_predictions(run.predictions_path(name, split, res.modalities))
            results.append(res)
            note = f", {len(lost)} skipped (media do not decode)" if lost else ""
            print(f"{name:<11} {split:<14} WAR {res.metrics['war']:.3f}  UAR {res.metrics['uar']:.3f}  "
                  f"n {res.metrics['n']}{note}  ({len(labels)} labels, {res.seconds:.1f} s)")
    for split, lost in skipped.items():
        run.record_skipped(stage, split, lost)  # every split, so a re-run that skips nothing clears old rows
        if lost:
            print(f"SKIPPED {len(lost)} clip(s) of {split}: media do not decode; not in n (see {run.skipped_path})")
    counts = {s: len(v) for s, v in skipped.items() if v}
    if counts or stage in run.read_metrics().get("skipped", {}):
        run.update_metrics("skipped", {stage: counts})  # the stage's entry is replaced whole
    return results


def subset_table(results: Sequence, subset: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """``{"eval_subset": {checkpoint: {split: cell}}}``: the data cards' cross-dataset figure (the DFEW
    seven) beside the full-label one, for every full-input result whose label set is not that subset
    (MAFW 11, RAVDESS 8). A cell is :func:`~omnibench.evaluate.summary_cell` of
    :func:`~omnibench.evaluate.subset_metrics` plus ``n_outside_subset`` (clips whose gold label is
    outside the subset: reported here, never dropped from the full-label figure) and ``subset``."""
    from omnibench.evaluate import subset_metrics, summary_cell
    from omnibench.labels import DFEW7

    subset = tuple(subset or DFEW7)
    out: dict = {}
    for r in results:
        if set(r.modalities.split(",")) != {"video", "audio"} or set(r.labels) <= set(subset):
            continue
        m = subset_metrics(r.gold, r.prediction, r.labels, subset=subset, status=r.status, n_boot=n_boot, seed=seed)
        out.setdefault(r.checkpoint, {})[r.split] = {**summary_cell(m), "n_outside_subset": int(m["n_outside_subset"]),
                                                     "subset": list(m["subset"])}
    return {"eval_subset": out} if out else {}
