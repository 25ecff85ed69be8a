"""Plot helpers return (fig, ax), draw on a given ax, never show, and save PNGs."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from omnibench import plots
from omnibench.evaluate import metrics
from omnibench.labels import DFEW7

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _no_show(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", boom)
    yield
    plt.close("all")


def _shares_frame():
    return pd.DataFrame({"group": ["both", "video", "audio"], "n": [10, 8, 9],
                         "share_video": [0.5, 0.9, 0.1], "share_video_lo": [0.4, 0.8, 0.0],
                         "share_video_hi": [0.6, 1.0, 0.2], "share_audio": [0.5, 0.1, 0.9],
                         "share_audio_lo": [0.4, 0.0, 0.8], "share_audio_hi": [0.6, 0.2, 1.0]})


def _cases(tmp_path):
    rng = np.random.default_rng(0)
    gold = list(rng.choice(DFEW7, 60))
    m = metrics(gold, [g if rng.random() < 0.7 else None for g in gold], DFEW7, n_boot=50)
    cell = {k: m[k] for k in ("war", "uar", "war_ci", "uar_ci", "n", "unparseable")}
    table = {"eval": {ck: {"test_id": cell, "test_ood": cell} for ck in ("base", "cold_start", "label_sft", "grpo")}}
    perc = pd.DataFrame({"modality": ["video", "audio"], "group": ["all", "all"], "drop": [0.3, 0.1],
                         "drop_lo": [0.2, 0.0], "drop_hi": [0.4, 0.2], "normalized": [0.4, 0.12]})
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text("".join(json.dumps({"step": i, "loss": 2.0 / (i + 1), "reward": i / 10}) + "\n" for i in range(10)))
    sr = 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    frames = rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    return {
        "confusion": lambda ax: plots.plot_confusion(m["confusion"], m["classes"], m["columns"], ax=ax),
        "table": lambda ax: plots.plot_metric_table(table, ax=ax),
        "shares": lambda ax: plots.plot_shares(_shares_frame(), ax=ax),
        "perceptual": lambda ax: plots.plot_perceptual(perc, ax=ax),
        "faithfulness": lambda ax: plots.plot_faithfulness(rng.uniform(size=30), rng.uniform(size=30),
                                                           labels=rng.choice(["video", "audio"], 30), ax=ax),
        "bar": lambda ax: plots.plot_attribution_bar({"video": 0.6, "audio": 0.2}, ax=ax),
        "frames": lambda ax: plots.plot_frames(frames, ncols=4, ax=ax),
        "waveform": lambda ax: plots.plot_waveform(audio, sr, ax=ax),
        "spectrogram": lambda ax: plots.plot_spectrogram(audio, sr, ax=ax),
        "curves": lambda ax: plots.plot_training_curves(jsonl, keys=["loss", "reward"], ax=ax),
    }


def test_every_helper_returns_fig_ax_and_saves_png(tmp_path):
    for name, make in _cases(tmp_path).items():
        fig, ax = make(None)
        assert isinstance(fig, matplotlib.figure.Figure) and ax in fig.axes, name
        assert ax.has_data() or ax.images or ax.collections or ax.patches, f"{name} drew nothing"
        path = plots.save_figure(fig, tmp_path / "figures" / f"{name}.png")
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000, name
        plt.close(fig)
        # drawing on a given ax uses that ax's figure
        fig2, ax2 = plt.subplots()
        f, a = make(ax2)
        assert f is fig2 and a is ax2, name
        plt.close(fig2)


def test_plot_audio_and_content(tmp_path):
    audio = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    fig, _ = plots.plot_audio(audio, 16000, title="x")
    assert len(fig.axes) >= 2
    assert plots.save_figure(fig, tmp_path / "audio").suffix == ".png"
    # the bar shows shares: 0.6/(0.6+0.2) = 0.75
    fig, ax = plots.plot_attribution_bar({"video": 0.6, "audio": -0.2})
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([0.75, -0.25])
    # the WAR/UAR table draws one bar per checkpoint x split x metric
    cell = {"war": 0.5, "uar": 0.4, "war_ci": [0.4, 0.6], "uar_ci": [0.3, 0.5], "n": 10, "unparseable": 0.0}
    fig, ax = plots.plot_metric_table({"eval": {"base": {"test_id": cell}, "grpo": {"test_id": cell}}})
    assert len(ax.patches) == 2 * 2
    with pytest.raises(KeyError, match="no column"):
        plots.plot_training_curves(pd.DataFrame({"step": [0, 1], "loss": [1, 0.5]}), keys=["kl"])
