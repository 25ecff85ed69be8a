"""The evaluation stage: every checkpoint on every split, the R1-Omni-shaped WAR/UAR table, single-modality runs.

Each split is scored against its own dataset's label set (:func:`omnibench.labels.labels_for`; the
model's labels for a dataset without a card, or the ``dataset`` knob's), its clips decoded with each
checkpoint's own settings (``decode`` overriding them) through the run's decode cache; clips whose
media do not decode are left out and counted (``skipped.jsonl``, ``metrics.json`` ``skipped``), or the
first one raises with ``on_error="error"``. Writes ``predictions/<checkpoint>__<split>__<mods>.jsonl``
and the ``eval``, ``eval_modalities``, ``eval_subset`` and ``splits`` sections of ``metrics.json``.

``04_evaluate.ipynb`` and ``omnibench eval`` call :func:`evaluate_stage` with an
:class:`EvaluateStageConfig`; the notebook then draws the table, the confusion matrices and the
accuracy per SynthEmo condition (:func:`by_condition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omnibench.run import RunFolder, locate_checkpoint
from omnibench.stages.config import ATTN_HELP, DEVICE_HELP, DTYPE_HELP, StageConfig, knob
from omnibench.stages.shards import Journal, Shards, chunk_size, run_chunks

__all__ = ["EvaluateStageConfig", "EvaluateStageResult", "by_condition", "evaluate_stage", "read_splits", "resolve_checkpoints",
           "subset_table"]


@dataclass
class EvaluateStageConfig(StageConfig):
    """Parameters of the evaluation stage (``04_evaluate.ipynb``; recipe ``evaluate:``; ``omnibench eval``)."""

    notebook = "04_evaluate.ipynb"

    seed: int = knob(0, "bootstrap seed")
    device: str = knob("auto", DEVICE_HELP)
    dtype: str = knob("auto", DTYPE_HELP)
    attn_implementation: str = knob("", ATTN_HELP)
    checkpoints: list = knob(["base", "cold_start", "label_sft", "grpo"],
                             "table rows: the run's checkpoint names (missing ones are skipped), or NAME:FOLDER / "
                             "FOLDER for a model folder elsewhere")
    splits: list = knob(["test_id", "test_actors", "test_ood"], "table columns")
    manifest: str = knob("", "manifest the splits are read from; empty: the run's data/manifest.jsonl")
    dataset: str = knob("", "label set every split is scored against (a data card name); empty: each split's own "
                            "dataset's")
    decode: dict = knob({}, "DecodeConfig overrides of each checkpoint's decode settings; {}: the ones it was "
                            "trained with")
    mode: str = knob("generate", "generate (greedy, answer parsed) | score (argmax of label scores, fast)")
    batch_size: int = knob(16, "clips per generate call")
    max_new_tokens: int = knob(64, "generation budget (reasoning + answer)")
    n_boot: int = knob(1000, "bootstrap resamples for the CIs")
    max_clips: int = knob(0, "evaluate only the first N clips of each split; 0: all")
    full_input: bool = knob(True, "evaluate every checkpoint with video and audio (the table); False: only the "
                                  "single-modality runs")
    single_modality: list = knob(["video", "audio"], "modality sets of the single-modality evaluation")
    single_modality_checkpoints: list = knob(["grpo"], "checkpoints evaluated with one modality removed")
    on_error: str = knob("skip", "clips whose media do not decode: skip and count (printed, in the table, "
                                 "skipped.jsonl) | error")
    progress: bool = knob(False, "tqdm progress bars (clips/s) while evaluating")

    def eval_config(self, modalities: str = "video,audio"):
        """The :class:`~omnibench.evaluate.EvalConfig` of one run of a checkpoint on a split."""
        from omnibench.evaluate.runner import EvalConfig

        return EvalConfig(modalities=modalities, mode=self.mode, batch_size=self.batch_size,
                          max_new_tokens=self.max_new_tokens, n_boot=self.n_boot, seed=self.seed)


@dataclass
class EvaluateStageResult:
    """The stage's :class:`~omnibench.evaluate.EvalResult` s (full input; single-modality), the clips
    listed per split and the ``{"eval": ...}`` table."""

    results: list
    single: list
    clips: dict
    table: dict
    checkpoints: dict = field(default_factory=dict)


def resolve_checkpoints(run: RunFolder, entries: Sequence[str]) -> dict[str, Path]:
    """Name -> model folder for each entry: a checkpoint of the run (skipped when it was not trained),
    ``NAME:FOLDER``, or a model folder (named as :func:`omnibench.run.locate_checkpoint` names it:
    ``runs/x/checkpoints/grpo/model`` -> ``grpo``). A folder that is not a checkpoint is an error."""
    out: dict[str, Path] = {}
    for e in entries:
        name, sep, folder = e.partition(":")
        if not sep:
            name, folder = "", e
        path = Path(folder).expanduser()
        if not sep and not path.is_dir() and "/" not in e:  # a checkpoint name of the run
            out.update(run.checkpoints_available([e]))
            continue
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"checkpoint {e!r}: {path} holds no config.json (a model folder written by "
                                    "save_pretrained)")
        out[name or locate_checkpoint(path)[1]] = path
    return out


def read_splits(run: RunFolder, cfg) -> dict[str, list]:
    """Split -> its clips (the first ``cfg.max_clips``) from ``cfg.manifest`` or the run's manifest; a
    split without clips is an error naming the manifest (a typo in a split name never evaluates nothing)."""
    from omnibench.data.manifest import read_manifest

    manifest = cfg.manifest or run.manifest
    if not cfg.manifest:
        run.require("data/manifest.jsonl")
    clips = {s: read_manifest(manifest, split=s)[: cfg.max_clips or None] for s in cfg.splits}
    empty = [s for s, c in clips.items() if not c]
    if empty:
        raise ValueError(f"{manifest}: no clips in split(s) {empty}")
    return clips


def evaluate_stage(run: RunFolder, config: EvaluateStageConfig) -> EvaluateStageResult:
    """Evaluate ``checkpoints`` x ``splits`` (full input) and ``single_modality_checkpoints`` x
    ``single_modality``; write predictions and the metrics.json sections. Returns the results."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import MediaStore, decode_config_for
    from omnibench.data.summary import split_info
    from omnibench.evaluate.metrics import eval_table, format_table
    from omnibench.evaluate.runner import model_labels
    from omnibench.labels import labels_for
    from omnibench.model import load_model
    from omnibench.model.loading import describe_load

    cfg = config
    available = resolve_checkpoints(run, cfg.checkpoints)
    shards = Shards()
    say(shards, "checkpoints:", {k: str(v) for k, v in available.items()})
    clips = read_splits(run, cfg)
    say(shards, {s: len(c) for s, c in clips.items()})
    if shards.main:
        info = split_info(read_manifest(cfg.manifest or run.manifest, check_media=False), cfg.splits,
                          run.training_splits())
        run.update_metrics("splits", info)  # per split: dataset, own label set, fold, in/out of distribution

    runs = [(name, "video,audio") for name in available] if cfg.full_input else []
    runs += [(name, mods) for name in cfg.single_modality_checkpoints if name in available
             for mods in cfg.single_modality]
    results, single, skipped, loaded = [], [], {}, {}
    for name, mods in runs:
        if name not in loaded:
            loaded.clear()  # one model in memory at a time
            model, processor = load_model(available[name], **cfg.load_kwargs(shards))
            store = MediaStore([], decode_config_for(model, cfg.decode), run.decode_cache, on_error=cfg.on_error,
                               max_items=2 * chunk_size(cfg.batch_size))
            loaded[name] = (model, processor, store)
            say(shards, f"{name}: model: {describe_load(model)}; decode {store.config.describe()}")
        model, processor, store = loaded[name]
        for split, part in clips.items():
            labels = labels_for(part, default=model_labels(model), dataset=cfg.dataset or None)
            res, lost = _evaluate_one(run, cfg, shards, model, processor, store, part, labels, name, mods, split)
            if not shards.main:
                continue
            skipped.setdefault(split, {}).update(lost)  # the union over checkpoints (their settings may differ)
            (results if mods == "video,audio" else single).append(res)
            note = f", {len(lost)} skipped (media do not decode)" if lost else ""
            tag = "" if mods == "video,audio" else f" [{mods}]"
            print(f"{name + tag:<11} {split:<14} WAR {res.metrics['war']:.3f}  UAR {res.metrics['uar']:.3f}  "
                  f"n {res.metrics['n']}{note}  ({len(labels)} labels, {res.seconds:.1f} s)")
    if not shards.main:  # rank 0 writes the tables
        return EvaluateStageResult([], [], clips, {"eval": {}}, available)
    for split, lost in skipped.items():
        run.record_skipped("evaluate", split, lost)  # every split, so a re-run that skips nothing clears old rows
        if lost:
            print(f"SKIPPED {len(lost)} clip(s) of {split}: media do not decode; not in n (see {run.skipped_path})")
    counts = {s: len(v) for s, v in skipped.items() if v}
    if counts or "evaluate" in run.read_metrics().get("skipped", {}):
        run.update_metrics("skipped", {"evaluate": counts})  # the stage's entry is replaced whole

    table = eval_table(results)
    run.update_metrics("eval", table["eval"])
    subset = subset_table(results, n_boot=cfg.n_boot, seed=cfg.seed)
    if subset:
        run.update_metrics("eval_subset", subset["eval_subset"])
    if single:
        run.update_metrics("eval_modalities", eval_table(single)["eval_modalities"])
    print(format_table(table))
    return EvaluateStageResult(results, single, clips, table, available)


def _evaluate_one(run, cfg, shards, model, processor, store, part, labels, name, mods, split):
    """One checkpoint x input x split, chunk by chunk (journalled, shared across processes); rank 0
    returns the :class:`~omnibench.evaluate.EvalResult` of the whole split and the clips left out."""
    import dataclasses
    import time

    from tqdm.auto import tqdm

    from omnibench.evaluate.result import EvalResult
    from omnibench.evaluate.runner import evaluate_split

    eval_cfg = cfg.eval_config(mods)
    chunk_cfg = dataclasses.replace(eval_cfg, n_boot=0)  # CIs once, over the whole split
    final = run.predictions_path(name, split, mods)
    tag = fingerprint(name, model, eval_cfg, store.config, labels)
    journal = Journal(final, shards.rank, tag=tag)

    def work(chunk):
        usable = store.usable(chunk, keep=True)  # decoded once: the decode below reads memory
        rows = [{"id": c.id, "skipped": store.skipped[c.id]} for c in chunk if c.id in store.skipped]
        if usable:
            res = evaluate_split(model, processor, usable, store.decode(usable), labels=labels, config=chunk_cfg,
                                 checkpoint=name, split=split)
            rows += res.records()
        return rows

    t0 = time.perf_counter()
    with tqdm(total=len(part), unit="clip", desc=f"{name} [{mods}] {split}", leave=False,
              disable=not (cfg.progress and shards.main)) as bar:
        run_chunks(part, chunk_size(cfg.batch_size), journal, shards, work, progress=bar.update)
    if not shards.main:
        return None, {}
    rows = journal.rows()
    ordered = [rows[c.id] for c in part]
    lost = {r["id"]: r["skipped"] for r in ordered if "skipped" in r}
    res = EvalResult.from_records([r for r in ordered if "skipped" not in r], labels=labels, n_boot=eval_cfg.n_boot,
                                  seed=eval_cfg.seed)
    res.mode, res.seconds = eval_cfg.mode, time.perf_counter() - t0
    res.extra["decode"] = store.config.to_dict()
    res.write_predictions(final)
    journal.clear()
    return res, lost


def fingerprint(*parts) -> str:
    """A short hash of what makes a journalled row valid (checkpoint, settings, label set): a re-run with
    other settings does not reuse the rows of an interrupted one."""
    import hashlib

    text = repr([getattr(p, "name_or_path", None) or getattr(getattr(p, "config", None), "_name_or_path", None)
                 or (p.to_dict() if hasattr(p, "to_dict") else p) for p in parts])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def say(shards, *args) -> None:
    """Print on the main process only."""
    if shards.main:
        print(*args)


def subset_table(results: Sequence, subset: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """``{"eval_subset": {checkpoint: {split: cell}}}``: the data cards' cross-dataset figure (the DFEW
    seven) beside the full-label one, for every full-input result whose label set is not that subset
    (MAFW 11, RAVDESS 8). A cell is :func:`~omnibench.evaluate.summary_cell` of
    :func:`~omnibench.evaluate.subset_metrics` plus ``n_outside_subset`` (clips whose gold label is
    outside the subset: reported here, never dropped from the full-label figure) and ``subset``."""
    from omnibench.evaluate.metrics import subset_metrics, summary_cell
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


def by_condition(result: EvaluateStageResult, checkpoints: Sequence[str]):
    """Accuracy per (checkpoint, split, input, SynthEmo condition) of the full-input results of
    ``checkpoints`` and every single-modality result (``-`` for clips without a condition)."""
    import pandas as pd

    rows = []
    for res in [r for r in result.results if r.checkpoint in checkpoints] + result.single:
        meta = {c.id: c.meta or {} for c in result.clips[res.split]}
        df = pd.DataFrame({"condition": [meta[i].get("condition", "-") for i in res.ids], "correct": res.correct})
        for c, acc in df.groupby("condition")["correct"].mean().items():
            rows.append({"checkpoint": res.checkpoint, "split": res.split, "input": res.modalities, "condition": c,
                         "accuracy": acc})
    return pd.DataFrame(rows, columns=["checkpoint", "split", "input", "condition", "accuracy"])
