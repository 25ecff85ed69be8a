"""The attribution stage: exact Shapley values over the modalities for one checkpoint on several splits.

For each split: the clips whose media decode (the others counted in ``skipped.jsonl``, or the first
raises with ``on_error="error"``), decoded with the checkpoint's settings; the model's full-input
completions (the evaluation stage's predictions, a predictions file, or generated here); the
attribution (:func:`omnibench.attribution.attribute`) scored against the split's own label set. The
first split's summary is the headline of ``metrics.json`` ``attribution`` (replaced whole, so one
report never mixes two runs), with the validation and faithfulness of every split under ``by_split``,
the perceptual score of the first split, the generation-based cross-check when asked for, and, for
splits whose clips carry human recognition rates per presentation (CREMA-D's votes, RAVDESS's
ratings), the measured shares against human perception (``human_reference``).
Per-clip rows go to ``attribution/<split>.jsonl`` and ``attribution.jsonl``.

``05_attribution.ipynb`` and ``omnibench attribute`` both call :func:`attribution_stage`; the
notebook then draws the shares, the validation, the faithfulness and example clips.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from omnibench.run import RunFolder
from omnibench.stages.config import ATTN_HELP, DEVICE_HELP, DTYPE_HELP, StageConfig, knob
from omnibench.stages.evaluate import fingerprint, read_splits, resolve_checkpoints, say
from omnibench.stages.shards import Journal, Shards, chunk_size, run_chunks

__all__ = ["AttributionStageConfig", "AttributionStageResult", "attribution_stage"]


@dataclass
class AttributionStageConfig(StageConfig):
    """Parameters of the attribution stage (``05_attribution.ipynb``; recipe ``attribution:``;
    ``omnibench attribute``)."""

    notebook = "05_attribution.ipynb"

    seed: int = knob(0, "seed for bootstrap, noise/swap removal and permutations")
    device: str = knob("auto", DEVICE_HELP)
    dtype: str = knob("auto", DTYPE_HELP)
    attn_implementation: str = knob("", ATTN_HELP)
    checkpoint: str = knob("grpo", "the model whose attribution is measured: a checkpoint name of the run, or "
                                   "NAME:FOLDER / FOLDER for a model folder elsewhere")
    splits: list = knob(["test_id", "test_actors", "test_ood"], "splits attributed; the first one's summary is the "
                                                                "headline in metrics.json")
    manifest: str = knob("", "manifest the splits are read from; empty: the run's data/manifest.jsonl")
    dataset: str = knob("", "label set every split is scored against (a data card name); empty: each split's own "
                            "dataset's")
    decode: dict = knob({}, "DecodeConfig fields overriding the checkpoint's decode settings ({}: as it was trained)")
    players: list = knob(["video", "audio"], "Shapley players: video, audio (+ text: the instruction prompt)")
    strategy: str = knob("drop", "how a modality is removed: drop | black | noise | swap")
    value: str = knob("prob", "value function: prob (target probability among labels) | logprob")
    target: str = knob("prediction", "label attributed: prediction (the model's answer) | gold")
    position: str = knob("auto", "where <answer>label</answer> is scored: auto (regenerate for a model that reasons "
                                 "first, else prompt) | prompt | reasoning | regenerate")
    predictions: str = knob("", "predictions JSONL with the full-input completions (omnibench eval); empty: the "
                                "run's predictions/ from the evaluation stage, else generated here")
    generate: bool = knob(True, "use the model's full-input reasoning (stored completions, else generated here); "
                                "False: none unless predictions is given (no faithfulness; the target is the argmax of the "
                                "label scores after the prompt)")
    batch_size: int = knob(16, "clips per forward pass")
    max_clips: int = knob(0, "attribute only the first N clips of each split; 0: all")
    max_new_tokens: int = knob(64, "generation budget: the full-input completions when missing and the reasoning "
                                   "regenerated under each coalition")
    n_perm: int = knob(3, "permutations for the perceptual score of the first split (0: none)")
    cross_check: int = knob(0, "also run the generation-based variant on the first N clips of the first split and "
                               "report the dominant-modality agreement (0: none)")
    n_boot: int = knob(1000, "bootstrap resamples for the CIs")
    n_examples: int = knob(3, "example clips drawn with frames, spectrogram, reasoning and attribution")
    interactive: bool = knob(False, "show the ipywidgets dashboard (JupyterLab)")
    on_error: str = knob("skip", "clips whose media do not decode: skip (listed in skipped.jsonl) | error")
    progress: bool = knob(False, "tqdm progress bars while scoring coalitions")

    def attribution_config(self):
        """The :class:`~omnibench.attribution.AttributionConfig` every split is attributed with."""
        from omnibench.attribution import AttributionConfig

        return AttributionConfig(players=tuple(self.players), strategy=self.strategy, value=self.value,
                                 target=self.target, position=self.position, batch_size=self.batch_size,
                                 seed=self.seed, max_new_tokens=self.max_new_tokens)


@dataclass
class AttributionStageResult:
    """Split -> :class:`~omnibench.attribution.AttributionResult`, the clips attributed, the headline
    split's media when the perceptual score or the cross-check needed them (else empty: :meth:`decode`
    gives any clip's), the ``metrics.json`` ``attribution`` section, the perceptual score (or None), the
    loaded model and the media store."""

    results: dict
    clips: dict
    media: dict
    summary: dict
    perceptual: object = None
    model: object = field(default=None, repr=False)
    processor: object = field(default=None, repr=False)
    store: object = field(default=None, repr=False)

    def decode(self, split: str, ids) -> dict:
        """Clip id -> decoded media of some of ``split``'s attributed clips (e.g. the notebook's examples),
        decoded with the stage's settings through the run's cache; the stage keeps no split in memory."""
        wanted = [c for c in self.clips[split] if c.id in set(ids)]
        return dict(zip((c.id for c in wanted), self.store.decode(wanted)))

    @property
    def head(self):
        """The first split's result (the headline)."""
        return next(iter(self.results.values()))


def _stored_completions(run: RunFolder, cfg: AttributionStageConfig, name: str, split: str, clips) -> dict | None:
    """Clip id -> full-input completion: from ``cfg.predictions`` (every clip must have one), else the
    run's evaluation predictions when they cover every clip, else None."""
    from omnibench.io import read_jsonl

    path = Path(cfg.predictions) if cfg.predictions else run.predictions_path(name, split)
    if not path.is_file():
        if cfg.predictions:
            raise FileNotFoundError(f"predictions file {path} not found")
        return None
    recs = {r["id"]: r.get("completion") or "" for r in read_jsonl(path)}
    lost = [c.id for c in clips if c.id not in recs]
    if lost and cfg.predictions:
        raise ValueError(f"{path}: no prediction for {len(lost)} clip(s), e.g. {lost[:3]}; run `omnibench eval` on "
                         "the same manifest split, or leave predictions empty")
    return None if lost else recs


def attribution_stage(run: RunFolder, config: AttributionStageConfig) -> AttributionStageResult:
    """Attribute ``checkpoint`` on ``splits``; write the per-clip rows and the ``attribution`` section.

    Each split is attributed chunk by chunk (:mod:`omnibench.stages.shards`: shared across processes
    under torchrun, journalled, resumed after a crash). ``position="auto"`` is resolved from the stored
    completions of the split, or else per chunk from the completions generated for it. On other ranks
    than 0 the returned result is empty; rank 0 writes every file."""
    from tqdm.auto import tqdm

    from omnibench.attribution import (
        AttributionResult,
        attribute,
        attribute_generate,
        dominant_agreement,
        perceptual_score,
        resolve_position,
    )
    from omnibench.data.media import MediaStore, decode_config_for
    from omnibench.evaluate.runner import model_labels
    from omnibench.labels import labels_for
    from omnibench.model import generate, load_model
    from omnibench.model.inputs import ALL
    from omnibench.model.loading import describe_load

    cfg = config
    shards = Shards()
    (name, path), = resolve_checkpoints(run, [cfg.checkpoint]).items() or [(cfg.checkpoint, None)]
    if path is None:
        raise FileNotFoundError(f"checkpoint {cfg.checkpoint!r} is not in {run.path} (trained: "
                                f"{sorted(run.checkpoints_available())}); run the training stages or give a folder")
    model, processor = load_model(path, **cfg.load_kwargs(shards))
    model.eval()
    decode_config = decode_config_for(model, cfg.decode)  # the checkpoint's settings, `decode` overriding them
    say(shards, f"{name}: model: {describe_load(model)}; decode {decode_config.describe()}")
    base_cfg = cfg.attribution_config()
    if not cfg.generate and base_cfg.position == "auto":
        base_cfg.position = "prompt"

    listed = read_splits(run, cfg)
    store = MediaStore([], decode_config, cache=run.decode_cache, on_error=cfg.on_error,
                       max_items=2 * chunk_size(cfg.batch_size))
    clips, results = {}, {}
    for s, part in listed.items():
        labels = labels_for(part, default=model_labels(model), dataset=cfg.dataset or None)
        stored = _stored_completions(run, cfg, name, s, part) if (cfg.generate or cfg.predictions) else None
        attr_cfg = dataclasses.replace(base_cfg)
        if stored is not None and attr_cfg.position == "auto":
            attr_cfg.position = resolve_position([stored[c.id] for c in part])

        def work(chunk, attr_cfg=attr_cfg, stored=stored, labels=labels):
            usable = store.usable(chunk, keep=True)  # decoded once: the decode below reads memory
            rows = [{"id": c.id, "skipped": store.skipped[c.id]} for c in chunk if c.id in store.skipped]
            if not usable:
                return rows
            media = store.decode(usable)
            if stored is not None:
                completions = [stored[c.id] for c in usable]
            elif cfg.generate:
                completions = generate(model, processor, media, ALL, max_new_tokens=cfg.max_new_tokens,
                                       batch_size=cfg.batch_size)
            else:
                completions = None
            res = attribute(model, processor, usable, media, labels=labels, config=attr_cfg, completions=completions)
            return rows + res.records()

        final = run.path / "attribution" / f"{s.replace('/', '.')}.jsonl"
        journal = Journal(final, shards.rank, tag=fingerprint(name, model, attr_cfg, decode_config, labels, stored is None))
        t0 = time.perf_counter()
        with tqdm(total=len(part), unit="clip", desc=f"attribute {name} {s}", leave=False,
                  disable=not (cfg.progress and shards.main)) as bar:
            run_chunks(part, chunk_size(cfg.batch_size), journal, shards, work, progress=bar.update)
        if not shards.main:
            continue
        rows = journal.rows()
        ordered = [rows[c.id] for c in part]
        lost = {r["id"]: r["skipped"] for r in ordered if "skipped" in r}
        run.record_skipped("attribution", s, lost)
        if lost:
            print(f"{s}: skipped {len(lost)} clip(s) whose media do not decode: {list(lost)[:5]}")
        clips[s] = [c for c in part if c.id not in lost]
        results[s] = AttributionResult.from_records([r for r in ordered if "skipped" not in r])
        results[s].seconds = time.perf_counter() - t0
        run.save_attribution({s: results[s]})  # this split's file, whole; attribution.jsonl rewritten below
        journal.clear()
        if stored is None and cfg.generate:
            print(f"{s}: no stored completions of {name}; generated them")
        print(f"{s}: attributed {len(clips[s])} clips ({results[s].position}) in {results[s].seconds:.1f} s")
    if not shards.main:
        return AttributionStageResult({}, {}, {}, {}, None, model, processor, store)
    run.save_attribution(results)

    first = cfg.splits[0]
    head = results[first]
    summary = head.summary(n_boot=cfg.n_boot, seed=cfg.seed)
    summary["split"] = first
    summary["checkpoint"] = name
    summary["decode"] = decode_config.to_dict()
    summary["by_split"] = {s: {k: v for k, v in r.summary(n_boot=cfg.n_boot, seed=cfg.seed).items()
                               if k in ("validation", "faithfulness")} for s, r in results.items()}
    labels = labels_for(clips[first], default=model_labels(model), dataset=cfg.dataset or None)
    attr_cfg = dataclasses.replace(base_cfg, position=head.position)
    perceptual, media = None, {}
    if cfg.n_perm or cfg.cross_check:  # the headline split's media, in memory only when a whole-split measure needs them
        store.max_items = max(store.max_items, len(clips[first]))
        media[first] = store.decode(clips[first])
    if cfg.n_perm:
        perceptual = perceptual_score(model, processor, clips[first], media[first], labels=labels, n_perm=cfg.n_perm,
                                      seed=cfg.seed, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
        summary["perceptual"] = perceptual.summary(n_boot=cfg.n_boot, seed=cfg.seed).to_dict(orient="records")
    if cfg.cross_check:
        k = min(cfg.cross_check, len(clips[first]))
        t0 = time.perf_counter()
        scored = attribute(model, processor, clips[first][:k], media[first][:k], labels=labels, config=attr_cfg,
                           completions=head.completion[:k] if head.completion[0] is not None else None,
                           predictions=head.prediction[:k])
        score_seconds = time.perf_counter() - t0
        gen = attribute_generate(model, processor, clips[first][:k], media[first][:k], labels=labels,
                                 config=attr_cfg, targets=head.target[:k], max_new_tokens=cfg.max_new_tokens)
        summary["cross_check"] = {**dominant_agreement(scored, gen), "n_clips": k, "score_seconds": score_seconds,
                                  "generate_seconds": gen.seconds, "time_ratio": gen.seconds / max(score_seconds, 1e-9)}
    human = _human_reference(run, cfg, name, results, clips)
    if human:
        summary["human_reference"] = human
    run.update_metrics("attribution", summary, merge=False)
    _print_summary(summary)
    return AttributionStageResult(results, clips, media, summary, perceptual, model, processor, store)


def _human_reference(run: RunFolder, cfg: AttributionStageConfig, name: str, results: dict, clips: dict) -> dict:
    """Split -> :func:`omnibench.attribution.human.human_reference` for every split whose clips carry human
    recognition rates (CREMA-D votes, RAVDESS ratings: ``meta["human_rates"]``), with the model's
    single-modality accuracy on the split from ``metrics.json`` when the evaluation stage measured it."""
    from omnibench.attribution.human import human_reference

    metrics = run.read_metrics()
    out = {}
    for s, res in results.items():
        if not any((c.meta or {}).get("human_rates") for c in clips[s]):
            continue
        def war(section, row, split=s):
            return ((metrics.get(section) or {}).get(row) or {}).get(split, {}).get("war")

        accuracy = {"video": war("eval_modalities", f"{name}/video"), "audio": war("eval_modalities", f"{name}/audio"),
                    "both": war("eval", name)}
        out[s] = human_reference(res, clips[s], model_accuracy=accuracy, n_boot=cfg.n_boot, seed=cfg.seed)
    return out


def _print_summary(summary: dict) -> None:
    m = summary["method"]
    print(f"attribution ({m['strategy']}, {m['value']}, target={m['target']}, position={m['position']}) of "
          f"{summary['checkpoint']} on {summary['split']}: {m['n']} clips")
    for mod, d in summary["validation"].items():
        print(f"  validation {mod}: n={d['n']} share_ok={d['share_ok']}")
    if "faithfulness" in summary:
        f = summary["faithfulness"]
        print(f"  faithfulness: agreement={f['agreement']} correlation={f['correlation']}")
    for split, h in summary.get("human_reference", {}).items():
        c, d = h["correlation"], h["dominant"]
        print(f"  human reference ({split}): r(video - audio share, face - voice rate) = {c['r']} {c['ci']} on "
              f"{c['n']} clips; dominant-modality agreement {d['agreement']} on {d['n']} clips humans favour clearly")
    if "cross_check" in summary:
        c = summary["cross_check"]
        print(f"  scoring vs generation: dominant-modality agreement={c.get('agreement')} on {c.get('n')} clips "
              "without a tie")
