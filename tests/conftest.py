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


def _per_clip(value, i, n, name):
    """``value`` for clip ``i``: the value itself, its ``i``-th item, or ``value(i)``."""
    if callable(value):
        return value(i)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} clips")
        return value[i]
    return value


def make_media(n, seed=0, *, frames=8, seconds=1.0, size=56, high=256, sr=16000, audio="noise", scale=0.1,
               hiss=0.0, as_dict=False):
    """``n`` small synthetic decoded clips ``c0``..``c{n-1}`` for the tiny model: no files, no decoding.

    Tests import it explicitly (``from conftest import make_media``), also from their module-level helpers.
    One ``np.random.default_rng(seed)`` is shared by all the clips. For each clip in turn it draws the
    frames first, ``rng.integers(0, high, (frames, size, size, 3), dtype=np.uint8)``, then the random part
    of the audio. So a clip's data depends on the seed and on every clip before it.

    frames, seconds, scale: one value for every clip, a list or tuple with one value per clip, or a
        function of the clip's index ``i``.
    audio: how the mono track of ``int(sr * seconds)`` samples is made (``sr`` is its sample rate):
        ``"noise"``: ``scale * rng.standard_normal(samples)``;
        ``"normal"``: ``rng.normal(0, scale, samples)``, the other way some tests draw the same noise;
        ``"tone"``: ``scale * sin(2 pi 150 (i + 1) t)``, a pitch of its own for each clip, with no random
        draw unless ``hiss``.
    hiss: with ``"tone"``, add ``rng.normal(0, hiss, samples)`` when it is not 0.
    as_dict: return ``{clip_id: media}`` (what ``MediaStore.from_media`` takes) instead of a list.
    """
    from omnibench.data.media import synth_media

    if audio not in ("noise", "normal", "tone"):
        raise ValueError(f"audio must be 'noise', 'normal' or 'tone', got {audio!r}")
    if hiss and audio != "tone":
        raise ValueError("hiss is only added to audio='tone'")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f, s, a = (_per_clip(v, i, n, name) for name, v in (("frames", frames), ("seconds", seconds),
                                                             ("scale", scale)))
        pixels = rng.integers(0, high, (f, size, size, 3), dtype=np.uint8)
        samples = int(sr * s)
        if audio == "noise":
            wave = a * rng.standard_normal(samples)
        elif audio == "normal":
            wave = rng.normal(0, a, samples)
        else:
            wave = a * np.sin(2 * np.pi * 150 * (i + 1) * (np.arange(samples) / sr))
            if hiss:
                wave = wave + rng.normal(0, hiss, samples)
        out.append(synth_media(pixels, wave.astype(np.float32), sr=sr, clip_id=f"c{i}"))
    return {m.clip_id: m for m in out} if as_dict else out


@pytest.fixture
def mp4_factory(tmp_path):
    def make(name="clip.mp4", **kw):
        return write_mp4(tmp_path / name, **kw)

    return make


@pytest.fixture(scope="module")
def tiny():
    """A freshly built tiny thinker and its processor (one per test module)."""
    from omnibench.tiny import build_tiny

    return build_tiny(seed=0)


@pytest.fixture
def one_thread():
    """One torch thread: the tiny model's fastest setting, and stable on a busy machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
