"""SynthEmo generation: plans rendered into mp4 files, split folders, the manifest, and the CLI.

This is the only part of SynthEmo that writes files.  Each clip is planned
(:func:`~omnibench.data.synth.plan.plan_clip`), rendered (:mod:`~omnibench.data.synth.video`,
:mod:`~omnibench.data.synth.audio`) and written as one H.264 + AAC mp4 by PyAV, under a temporary
name renamed into place, so an interrupted run leaves no half-written clip behind and resumes where
it stopped.  A split folder records the parameters it was made with (``params.json``); a folder made
with other parameters (or by another :data:`GENERATOR_VERSION`) is regenerated, never mixed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.data.synth.audio import render_audio
from omnibench.data.synth.cues import CONDITIONS, LABELS, reasoning_text
from omnibench.data.synth.plan import DRAW_SPLIT, OOD_FACTORS, SPLITS, SynthConfig, default_shift, plan_clip
from omnibench.data.synth.video import render_frames
from omnibench.io import atomic_path, atomic_write_text

#: bump when the rendering changes, so resumed folders are regenerated
GENERATOR_VERSION = 3


def write_mp4(
    path: str | os.PathLike, frames: np.ndarray, audio: np.ndarray, fps: int, sr: int, crf: int = 18
) -> None:
    """Write an H.264 (+ AAC mono) mp4 atomically (temporary name, then rename)."""
    import av

    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": str(crf), "bf": "0", "g": str(max(1, len(frames)))}
        vs.thread_count = 1
        ast = c.add_stream("aac", rate=sr, layout="mono")
        ast.bit_rate = 64000
        ast.options = {"aac_coder": "fast"}
        for fr in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        step, pts = 1024, 0
        for i in range(0, len(audio), step):
            chunk = np.ascontiguousarray(audio[i : i + step][None])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            af.sample_rate, af.pts = sr, pts
            pts += chunk.shape[1]
            for p in ast.encode(af):
                c.mux(p)
        for p in ast.encode():
            c.mux(p)


def _meta(plan: dict) -> dict:
    meta = {k: plan[k] for k in ("condition", "actor", "video_label", "audio_label", "cues", "intensity")}
    meta["seed"] = plan["clip_seed"]
    meta["index"] = plan["index"]
    nz = plan["nuisance"]
    meta["nuisance"] = {
        "lighting_gain": round(nz["gain"], 4), "lighting_gradient": round(nz["gradient"], 4),
        "video_noise": nz["video_noise"]["kind"], "audio_noise": nz["audio_noise"]["kind"],
        "f0_hz": round(plan["voice"]["f0"], 2), "pitch_jitter_st": round(nz["pitch_jitter_st"], 4),
    }  # fmt: skip
    if plan["shift"]:
        meta["shift"] = plan["shift"]
    if plan["split"] == "cold_start":
        meta["reasoning"] = reasoning_text(plan["label"], plan["condition"], plan["cues"])
    return meta


def _make_clip(job: tuple) -> dict:
    """Worker: plan, render and write one clip (skipped when the file exists); returns the Clip dict."""
    out_dir, seed, split, index, shift, cfg_d, resume = job
    cfg = SynthConfig(**cfg_d)
    plan = plan_clip(seed, split, index, shift, cfg)
    path = Path(out_dir) / "media" / split / f"{plan['id']}.mp4"
    if not (resume and path.is_file()):
        write_mp4(path, render_frames(plan, cfg), render_audio(plan, cfg), cfg.fps, cfg.sr, cfg.crf)
    return Clip(id=plan["id"], video=str(path), label=plan["label"], split=split, dataset="synthemo",
                meta=_meta(plan)).to_dict()  # fmt: skip


def _prepare_folder(folder: Path, params: dict) -> bool:
    """Create ``folder``; return True when its existing files were made with ``params`` (resume)."""
    folder.mkdir(parents=True, exist_ok=True)
    pfile = folder / "params.json"
    if pfile.is_file():
        try:
            same = json.loads(pfile.read_text()) == params
        except json.JSONDecodeError:
            same = False
        if same:
            return True
    for old in folder.glob("*.mp4"):  # made with other parameters: regenerate
        old.unlink()
    atomic_write_text(pfile, json.dumps(params, sort_keys=True))
    return False


def _default_workers() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 8))


def generate_split(
    out_dir: str | os.PathLike,
    split: str,
    n: int,
    seed: int = 0,
    shift: Iterable[str] | None = None,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    resume: bool = True,
    progress: bool = False,
) -> list[Clip]:
    """Generate ``n`` clips of ``split`` under ``out_dir/media/<split>/``; returns their Clip records.

    ``shift`` lists the OOD factors to shift (default: the split's own, :func:`plan.default_shift`: all of
    them for ``test_ood``, the actors for ``test_actors``, none for the others).
    """
    cfg = cfg or SynthConfig()
    shift = frozenset(default_shift(split) if shift is None else shift)
    if n <= 0:
        return []
    out_dir = Path(out_dir).resolve()
    params = dict(version=GENERATOR_VERSION, seed=seed, shift=sorted(shift), **asdict(cfg))
    resume = _prepare_folder(out_dir / "media" / split, params) and resume
    jobs = [(str(out_dir), seed, split, i, tuple(sorted(shift)), asdict(cfg), resume) for i in range(n)]
    workers = workers or _default_workers()
    if workers <= 1 or n < 8:
        it = map(_make_clip, jobs)
        results = _progress(it, n, split, progress)
    else:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(workers) as pool:
            results = _progress(pool.imap(_make_clip, jobs, chunksize=4), n, split, progress)
    return [Clip(**d) for d in results]


def _progress(it, n: int, split: str, show: bool) -> list:
    if not show:
        return list(it)
    from tqdm.auto import tqdm

    return list(tqdm(it, total=n, desc=f"synthemo {split}", unit="clip"))


def generate(
    out_dir: str | os.PathLike,
    n_train: int = 1400,
    n_cold_start: int = 140,
    n_test: int = 210,
    seed: int = 0,
    duration: float = 1.5,
    fps: int = 8,
    size: int = 112,
    workers: int | None = None,
    ood_shift: Sequence[str] = OOD_FACTORS,
    resume: bool = True,
    progress: bool = False,
    n_draw: int = 0,
    draw_seed: int | None = None,
    **difficulty,
) -> Path:
    """Generate SynthEmo under ``out_dir`` and return the path of ``out_dir/manifest.jsonl``.

    Args:
        n_train, n_cold_start: clips in ``train`` and ``cold_start``.
        n_test: clips in each test split (``test_id``, ``test_actors`` and ``test_ood``).
        seed: master seed; clip ``i`` of a split is seeded by (seed, split, i).
        duration, fps, size: clip length (s), frame rate, frame size (square).
        workers: processes (default: the CPUs available).
        ood_shift: the OOD factors ``test_ood`` shifts (default all of :data:`OOD_FACTORS`).
        resume: keep existing files made with the same parameters.
        n_draw, draw_seed: clips in ``test_draw`` (none by default), drawn with master seed ``draw_seed``
            (not ``seed``): new actors' faces and voices and new clips of the same distribution.
        difficulty: other :class:`SynthConfig` fields, e.g. ``min_intensity=0.8, max_onset=0.0``
            (stronger, earlier expressions: an easier set).
    """
    if n_draw and (draw_seed is None or int(draw_seed) == int(seed)):
        raise ValueError(f"n_draw={n_draw} needs a draw_seed other than the training seed {seed} (got {draw_seed}): "
                         f"{DRAW_SPLIT} is drawn with a seed never used in training")
    cfg = SynthConfig(duration=duration, fps=fps, size=size, **difficulty)
    counts = {"train": n_train, "cold_start": n_cold_start, DRAW_SPLIT: n_draw}  # others: n_test
    clips: list[Clip] = []
    for split in SPLITS:
        shift = ood_shift if split == "test_ood" else default_shift(split)
        split_seed = int(draw_seed) if split == DRAW_SPLIT and n_draw else seed
        clips += generate_split(out_dir, split, counts.get(split, n_test), split_seed, shift, cfg, workers, resume,
                                progress)  # fmt: skip
    return write_manifest(clips, Path(out_dir) / "manifest.jsonl")


def summarize(manifest_path: str | os.PathLike):
    """Clip counts by split x condition (rows) and label (columns), with totals."""
    import pandas as pd

    clips = read_manifest(manifest_path, check_media=False)
    df = pd.DataFrame(
        [{"split": c.split, "condition": c.meta.get("condition"), "label": c.label} for c in clips]
    )
    if df.empty:
        return pd.DataFrame(columns=list(LABELS) + ["total"])
    table = pd.crosstab([df["split"], df["condition"]], df["label"])
    table = table.reindex(columns=[lab for lab in LABELS if lab in table.columns])
    order = {s: i for i, s in enumerate(SPLITS)}
    table = table.sort_index(
        key=lambda idx: idx.map(lambda v: order.get(v, CONDITIONS.index(v) if v in CONDITIONS else 99))
    )
    table["total"] = table.sum(axis=1)
    return table


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def add_synth_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (manifest.jsonl + media/)")
    parser.add_argument("--n-train", type=int, default=1400, help="clips in the train split (default 1400)")
    parser.add_argument(
        "--n-cold-start", type=int, default=140, help="clips with reasoning text (default 140)"
    )
    parser.add_argument(
        "--n-test", type=int, default=210, help="clips in each of test_id, test_actors and test_ood (default 210)"
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--n-draw", type=int, default=0, help="clips in test_draw, drawn with --draw-seed (default 0)")
    parser.add_argument("--draw-seed", type=int, default=1000, help="master seed of test_draw (default 1000)")
    parser.add_argument("--duration", type=float, default=1.5, help="clip length in seconds (default 1.5)")
    parser.add_argument("--fps", type=int, default=8, help="video frame rate (default 8)")
    parser.add_argument("--size", type=int, default=112, help="frame size in pixels (default 112)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--no-resume", action="store_true", help="regenerate files that already exist")


def cli_synth(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    path = generate(args.out, args.n_train, args.n_cold_start, args.n_test, seed=args.seed, duration=args.duration,
                    fps=args.fps, size=args.size, workers=args.workers, resume=not args.no_resume,
                    progress=sys.stderr.isatty(), n_draw=args.n_draw, draw_seed=args.draw_seed)  # fmt: skip
    table = summarize(path)
    print(table.to_string())
    print(
        f"wrote {int(table['total'].sum()) if len(table) else 0} clips and {path} in {time.perf_counter() - t0:.1f} s"
    )
    return 0
