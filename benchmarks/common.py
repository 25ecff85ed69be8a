"""Helpers shared by the benchmark harnesses: machine facts, timers, SynthEmo clips, JSON output.

Every harness prints exactly one JSON line of figures on stdout (anything else goes to stderr) and,
with ``--out FILE``, writes the same object to FILE. Each object carries ``bench`` (its name) and
``machine`` (CPU count, load average at the start and the end, library versions, date), so a figure
is never read without the load it was measured under.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ------------------------------------------------------------------------------------ machine


def loadavg() -> float | None:
    """1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    """Facts a figure depends on: CPUs, load, threads, device, versions, date (UTC)."""
    import torch

    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model(),
        "load_1min": loadavg(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for mod in ("transformers", "trl", "decord"):
        try:
            info[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):  # a library missing is a fact, not an error
            info[mod] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name()
    else:
        info["device"] = "cpu"
    return info


# ------------------------------------------------------------------------------------ CLI + output


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options every harness shares (--out, --threads, --quick)."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    ap.add_argument("--out", default=None, help="also write the JSON object to this file")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: the tiny model's fastest, and steady on a busy machine)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test: seconds, figures not meaningful)")
    return ap


def setup(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def emit(name: str, figures: dict, out: str | os.PathLike | None = None, started: dict | None = None,
         device: str = "cpu") -> dict:
    """Print ``{"bench": name, **figures, "machine": ...}`` as one JSON line (and write it to ``out``)."""
    end = machine(device)
    if started:
        end["load_1min_start"] = started.get("load_1min")
    obj = {"bench": name, **figures, "machine": end}
    line = json.dumps(obj, default=_json_default)
    print(line, flush=True)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n", encoding="utf-8")
    return obj


def _json_default(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)


@contextlib.contextmanager
def quiet_stdout():
    """Send everything printed inside the block to stderr (stdout carries the one JSON line)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


# ------------------------------------------------------------------------------------ timing


def sync() -> None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    except ImportError:  # pragma: no cover
        pass


def rnd(x: float, n: int = 4) -> float:
    return round(float(x), n)


def time_reps(fn: Callable[[], object], reps: int, warmup: int = 1) -> dict:
    """Best and median wall seconds of ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(max(1, reps)):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - t)
    return {"best": rnd(min(runs)), "median": rnd(statistics.median(runs)), "reps": len(runs)}


class Timers:
    """Named wall-clock accumulators; sections may nest (each name accumulates its own total).

    ``wrap(obj, attr, name)`` replaces ``obj.attr`` by a timed version (undone by :meth:`restore`),
    which is how the harnesses instrument code they must not edit.
    """

    def __init__(self):
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._patches: list[tuple[object, str, object, bool]] = []

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        sync()
        t = time.perf_counter()
        try:
            yield
        finally:
            sync()
            self.total[name] += time.perf_counter() - t
            self.calls[name] += 1

    def timed(self, fn: Callable, name: str | Callable[..., str]) -> Callable:
        """``fn`` timed under ``name`` (or under ``name(*args, **kwargs)`` when it is callable)."""

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with self.section(name(*args, **kwargs) if callable(name) else name):
                return fn(*args, **kwargs)

        return inner

    def wrap(self, obj, attr: str, name: str | Callable[..., str]) -> None:
        had = attr in vars(obj) if hasattr(obj, "__dict__") else False
        original = getattr(obj, attr)
        self._patches.append((obj, attr, vars(obj).get(attr) if had else None, had))
        setattr(obj, attr, self.timed(original, name))

    def restore(self) -> None:
        for obj, attr, old, had in reversed(self._patches):
            if had:
                setattr(obj, attr, old)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(obj, attr)
        self._patches.clear()

    def snapshot(self) -> dict[str, float]:
        return dict(self.total)

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(after) | set(before)}


# ------------------------------------------------------------------------------------ data


def cache_root() -> Path:
    """Where generated clips and the short-SFT model live: ``$OMNIBENCH_BENCH_CACHE`` or .cache/bench
    (ignored by git)."""
    return Path(os.environ.get("OMNIBENCH_BENCH_CACHE") or REPO / ".cache" / "bench")


def synth_clips(n: int, split: str = "train", root: str | os.PathLike | None = None, seed: int = 0,
                workers: int = 2):
    """``n`` SynthEmo clips of ``split`` (generated once under ``root``, reused afterwards)."""
    from omnibench.data import synth

    with quiet_stdout():
        return synth.generate_split(root or cache_root() / "synthemo", split, n, seed=seed, workers=workers,
                                    resume=True)


def decoded_media(clips, cfg=None):
    """Decoded media of ``clips`` (no cache): the in-memory form every model harness starts from."""
    from omnibench.data.media import DecodeConfig, decode_clip

    cfg = cfg or DecodeConfig()
    return [decode_clip(c, cfg) for c in clips]


def bench_model(steps: int = 150, n_clips: int = 64, root: str | os.PathLike | None = None, quick: bool = False):
    """(model, processor): the tiny thinker after a short explained cold-start SFT on SynthEmo.

    Built once per size under ``.cache/bench/`` and loaded afterwards, so that the evaluation and
    attribution harnesses time a model that writes ``<think>…</think><answer>…</answer>`` answers
    (a randomly initialised one rarely writes a parseable answer). It is not an accurate model.
    """
    from omnibench.data.manifest import write_manifest
    from omnibench.model import load_model
    from omnibench.sft import run_sft

    if quick:
        steps, n_clips = 2, 8
    folder = Path(root or cache_root()) / f"sft_{n_clips}clips_{steps}steps"
    final = folder / "model"
    if not (final / "config.json").is_file():
        clips = synth_clips(n_clips, "cold_start")
        manifest = write_manifest(clips, folder / "manifest.jsonl")
        with quiet_stdout():
            run_sft({"manifest": str(manifest), "split": "cold_start", "mode": "explained", "out": str(folder),
                     "max_steps": steps, "batch_size": 8, "learning_rate": 2e-3, "modality_dropout": 0.3,
                     "progress": False, "threads": None, "cache_dir": str(folder / "decode_cache")})
    return load_model(final)


def ratio_summary(per_round: list[float], n: int = 3) -> dict:
    """Median, min and max of ratios measured within each round (each round's variants ran back to
    back, so a change of load between rounds cancels out of its ratio)."""
    vals = [float(x) for x in per_round if x is not None]
    if not vals:
        return {"median": None, "per_round": []}
    return {"median": rnd(statistics.median(vals), n), "min": rnd(min(vals), n), "max": rnd(max(vals), n),
            "per_round": [rnd(v, n) for v in vals]}


def round_order(items: list, r: int) -> list:
    """``items`` in order on even rounds and reversed on odd ones (A B C, C B A, ...), so that a load
    that drifts during a round favours no item."""
    return list(items) if r % 2 == 0 else list(reversed(items))
