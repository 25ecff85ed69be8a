"""Shared fixtures: everything offline, on the CPU, built locally."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


def write_mp4(path, n_frames=12, fps=8, size=64, audio_seconds=1.5, sr=16000, seed=0):
    """A small H.264 mp4 (+ AAC track unless audio_seconds is None) with distinct frame brightness."""
    import av

    rng = np.random.default_rng(seed)
    c = av.open(str(path), "w")
    vs = c.add_stream("libx264", rate=fps)
    vs.width = vs.height = size
    vs.pix_fmt = "yuv420p"
    if audio_seconds:
        ast = c.add_stream("aac", rate=sr)
        ast.layout = "mono"
    for i in range(n_frames):
        img = np.full((size, size, 3), (i * 17) % 256, np.uint8)
        img[: size // 4, : size // 4] = rng.integers(0, 255, 3, dtype=np.uint8)
        for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in vs.encode():
        c.mux(p)
    if audio_seconds:
        t = np.arange(int(audio_seconds * sr)) / sr
        sig = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
        fr = av.AudioFrame.from_ndarray(sig, format="flt", layout="mono")
        fr.sample_rate = sr
        for p in ast.encode(fr):
            c.mux(p)
        for p in ast.encode():
            c.mux(p)
    c.close()
    return path


@pytest.fixture
def mp4_factory(tmp_path):
    def make(name="clip.mp4", **kw):
        return write_mp4(tmp_path / name, **kw)

    return make


@pytest.fixture(scope="module")
def tiny():
    """A freshly built tiny thinker and its processor (one per test module)."""
    from omnibench.model import build_tiny

    return build_tiny(seed=0)


@pytest.fixture
def one_thread():
    """One torch thread: the tiny model's fastest setting, and stable on a busy machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
