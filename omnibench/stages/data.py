"""The data stage: the run's clips in ``data/manifest.jsonl``, and what ``metrics.json`` keeps of them.

SynthEmo is generated into ``data/`` (files made earlier with the same parameters are kept), a real
manifest (``omnibench index``) is validated and re-rooted there, or several indexer ``sources`` are
indexed and merged there with dataset-qualified splits (``dfew/train``, ``mafw/test``); real media stay
where they are. ``01_data.ipynb`` calls :func:`data_stage`, then :func:`class_examples`, and plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from omnibench.data.manifest import Clip, read_manifest
from omnibench.data.summary import clip_durations, import_manifest, index_sources, one_per_class
from omnibench.run import RunFolder
from omnibench.stages.config import StageConfig, knob

__all__ = ["DataStageConfig", "DataStageResult", "class_examples", "data_stage"]


@dataclass
class DataStageConfig(StageConfig):
    """Parameters of the data stage (``01_data.ipynb``; the recipe's ``data:`` section)."""

    notebook = "01_data.ipynb"

    seed: int = knob(0, "SynthEmo master seed")
    manifest: str = knob("", "manifest.jsonl of a real dataset (omnibench index); empty: generate SynthEmo")
    sources: list = knob([], "indexer specs merged into one manifest with dataset-qualified splits ({dataset, root, "
                             "fold, channel, split, open_vocab, name}); []: manifest or SynthEmo")
    roots: dict = knob({}, "dataset -> root folder, for the sources that give no root (set one with -o "
                           "data.roots.dfew PATH)")
    on_error: str = knob("skip", "clips whose media do not decode: skip (listed in skipped.jsonl) | error")
    n_train: int = knob(1400, "SynthEmo clips in train (label only)")
    n_cold_start: int = knob(140, "SynthEmo clips with reasoning text (cold_start)")
    n_test: int = knob(210, "SynthEmo clips in each of test_id, test_actors and test_ood")
    n_draw: int = knob(0, "SynthEmo clips in test_draw, a new draw made with draw_seed (new faces, voices, clips); 0: none")
    draw_seed: int = knob(1000, "master seed of test_draw; must differ from seed (a seed never used in training)")
    duration: float = knob(1.5, "SynthEmo clip length in seconds")
    fps: int = knob(8, "SynthEmo video frame rate")
    size: int = knob(112, "SynthEmo frame size in pixels")
    workers: int = knob(0, "SynthEmo generator processes; 0: all CPUs")
    examples_split: str = knob("train", "split the per-class examples come from")
    n_frames: int = knob(8, "frames shown per example clip")


@dataclass
class DataStageResult:
    """What :func:`data_stage` made: the manifest, its clips, one record per indexed source, durations."""

    manifest: Path
    clips: list[Clip]
    sources: list[dict]
    durations: list[float]


def data_stage(run: RunFolder, config: DataStageConfig) -> DataStageResult:
    """Write the run's manifest (SynthEmo, an imported manifest or merged sources) and the ``data``
    section of ``metrics.json`` (manifest, clip counts per split, mean duration, sources, files whose
    duration cannot be read)."""
    from omnibench.data import synth

    cfg = config
    sources: list[dict] = []
    if cfg.sources:
        path, sources = index_sources(cfg.sources, run.manifest, roots=cfg.roots)
    elif cfg.manifest:
        path = import_manifest(cfg.manifest, run.manifest)
    else:
        path = synth.generate(run.data, n_train=cfg.n_train, n_cold_start=cfg.n_cold_start, n_test=cfg.n_test,
                              seed=cfg.seed, duration=cfg.duration, fps=cfg.fps, size=cfg.size,
                              workers=cfg.workers or None, n_draw=cfg.n_draw, draw_seed=cfg.draw_seed)
    clips = read_manifest(path)
    durations = clip_durations(clips, on_error=cfg.on_error)
    splits: dict[str, int] = {}
    for c in clips:
        splits[c.split] = splits.get(c.split, 0) + 1
    readable = [d for d in durations if not math.isnan(d)]
    unreadable = len(durations) - len(readable)
    run.update_metrics("data", {
        "manifest": str(path), "n_clips": len(clips), "splits": splits,
        "mean_duration_s": float(sum(readable) / len(readable)) if readable else float("nan"),
        **({"sources": sources} if sources else {}), **({"unreadable": unreadable} if unreadable else {})})
    print(f"{len(clips)} clips in {path}" + (f"; {unreadable} file(s) whose duration cannot be read" if unreadable else ""))
    return DataStageResult(path, clips, sources, durations)


def class_examples(run: RunFolder, config: DataStageConfig, clips: list[Clip]) -> tuple[dict, list]:
    """One decoded example clip per class of ``config.examples_split`` (``config.n_frames`` frames),
    passing over clips whose media do not decode (recorded in ``skipped.jsonl`` under stage ``data``).
    Returns ``({label: clip}, [media])``."""
    from omnibench.data.media import DecodeConfig, MediaStore

    store = MediaStore(clips, DecodeConfig(num_frames=config.n_frames), run.decode_cache, on_error=config.on_error)
    examples = one_per_class(clips, split=config.examples_split, store=store)
    media = store.decode(list(examples.values()))
    run.record_skipped("data", config.examples_split, store.skipped)
    print(f"decoded {len(media)} example clip(s); skipped {len(store.skipped)} that do not decode {list(store.skipped)}")
    return examples, media
