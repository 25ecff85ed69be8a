"""Figure helpers for notebooks and the report.

Every helper takes ``ax=None`` (a new figure is made when None), returns ``(fig, ax)`` and never
calls ``plt.show()``; :func:`save_figure` writes a PNG. Inputs are plain data (dicts, arrays,
DataFrames from :mod:`omnibench.evaluate` / :mod:`omnibench.attribution`), so the helpers work on
results loaded from a run folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

#: One colour per modality, used by every attribution figure.
COLORS = {"video": "#3b75af", "audio": "#ef8636", "text": "#7f7f7f"}


def _ax(ax, figsize=(5, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG (folders created); returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return path


# ------------------------------------------------------------------------------------ evaluation


def plot_confusion(confusion, classes: Sequence[str], columns: Sequence[str] | None = None, normalize: bool = True,
                   title: str | None = None, ax=None):
    """Confusion matrix heatmap (rows gold, columns predicted); ``normalize`` divides rows by their sum.

    Accepts the ``confusion``/``classes``/``columns`` of :func:`omnibench.evaluate.metrics`.
    """
    import seaborn as sns

    cm = np.asarray(confusion, dtype=float)
    columns = list(columns) if columns is not None else list(classes)[: cm.shape[1]]
    keep = cm.sum(axis=1) > 0  # gold classes that occur
    cm, rows = cm[keep], [c for c, k in zip(classes, keep) if k]
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = _ax(ax, figsize=(1 + 0.6 * len(columns), 0.8 + 0.5 * len(rows)))
    sns.heatmap(cm, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", cbar=False, ax=ax,
                xticklabels=columns, yticklabels=rows, vmin=0, vmax=1 if normalize else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    if title:
        ax.set_title(title)
    return fig, ax


def plot_metric_table(table: Mapping, metrics: Sequence[str] = ("war", "uar"), ax=None, title: str | None = None):
    """Grouped bars of WAR/UAR (%) with their 95% CIs for ``{"eval": {checkpoint: {split: cell}}}``
    (or its inner dict): one group per checkpoint, one bar per split x metric."""
    ev = table.get("eval", table)
    checkpoints = list(ev)
    splits = sorted({s for c in ev.values() for s in c})
    series = [(sp, m) for sp in splits for m in metrics]
    fig, ax = _ax(ax, figsize=(1.5 + 1.4 * len(checkpoints), 3.5))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(checkpoints))
    for k, (sp, m) in enumerate(series):
        vals, lo, hi = [], [], []
        for ck in checkpoints:
            cell = ev[ck].get(sp)
            v = np.nan if cell is None or cell.get(m) is None else 100 * cell[m]
            ci = cell.get(f"{m}_ci") if cell else None
            vals.append(v)
            lo.append(v - 100 * ci[0] if ci and ci[0] is not None else 0)
            hi.append(100 * ci[1] - v if ci and ci[1] is not None else 0)
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2,
               label=f"{sp} {m.upper()}", alpha=0.9 if m == "war" else 0.6)
    ax.set_xticks(x, checkpoints)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncols=2)
    if title:
        ax.set_title(title)
    return fig, ax


# ------------------------------------------------------------------------------------ attribution


def plot_shares(summary, players: Sequence[str] = ("video", "audio"), ax=None, title: str | None = None,
                xlabel: str = ""):
    """Mean Shapley shares per group (class or condition) with CIs: the DataFrame of
    ``AttributionResult.by_class()`` / ``.by_condition()`` (columns group, n, share_<p>, _lo, _hi)."""
    fig, ax = _ax(ax, figsize=(1.5 + 0.8 * len(summary), 3.5))
    groups = [str(g) for g in summary["group"]]
    x = np.arange(len(groups))
    width = 0.8 / len(players)
    for k, p in enumerate(players):
        m = np.asarray(summary[f"share_{p}"], float)
        lo = np.nan_to_num(m - np.asarray(summary[f"share_{p}_lo"], float))
        hi = np.nan_to_num(np.asarray(summary[f"share_{p}_hi"], float) - m)
        ax.bar(x + (k - (len(players) - 1) / 2) * width, m, width, yerr=[lo, hi], capsize=2,
               color=COLORS.get(p), label=p)
    ax.axhline(0.5, color="k", lw=0.6, ls=":")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(groups, summary["n"])], fontsize=8)
    ax.set_ylabel("Shapley share")
    ax.set_xlabel(xlabel)
    ax.set_ylim(min(-0.1, float(np.nanmin(np.asarray(summary[[f"share_{p}_lo" for p in players]], float)))
                    - 0.05 if len(summary) else -0.1), 1.05)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig, ax


def plot_perceptual(summary, ax=None, title: str | None = None, normalized: bool = False):
    """Perceptual scores (accuracy drop when a modality is permuted) with CIs, from
    ``PerceptualResult.summary()`` (one bar per modality, grouped by ``group``)."""
    groups = list(dict.fromkeys(summary["group"]))
    mods = list(dict.fromkeys(summary["modality"]))
    fig, ax = _ax(ax, figsize=(1.5 + 1.0 * len(groups), 3.5))
    width = 0.8 / max(len(mods), 1)
    x = np.arange(len(groups))
    for k, mod in enumerate(mods):
        sub = summary[summary["modality"] == mod].set_index("group").reindex(groups)
        v = sub["normalized"].to_numpy(float) if normalized else sub["drop"].to_numpy(float)
        if normalized:
            err = None
        else:
            err = [np.nan_to_num(v - sub["drop_lo"].to_numpy(float)), np.nan_to_num(sub["drop_hi"].to_numpy(float) - v)]
        ax.bar(x + (k - (len(mods) - 1) / 2) * width, v, width, yerr=err, capsize=2, color=COLORS.get(mod),
               label=f"{mod} permuted")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, groups)
    ax.set_ylabel("normalised accuracy drop" if normalized else "accuracy drop")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig, ax


def plot_faithfulness(stated_video_share, measured_video_share, labels: Sequence[str] | None = None, ax=None,
                      title: str | None = None):
    """Scatter of the stated (reasoning-cue) video share vs the measured Shapley video share."""
    s = np.asarray(stated_video_share, float)
    m = np.asarray(measured_video_share, float)
    ok = ~np.isnan(s) & ~np.isnan(m)
    fig, ax = _ax(ax, figsize=(4, 4))
    if labels is not None:
        lab = np.asarray(labels, dtype=object)
        for g in sorted({str(x) for x in lab[ok]}):
            sel = ok & (lab.astype(str) == g)
            ax.scatter(s[sel], m[sel], s=14, alpha=0.7, label=g)
        ax.legend(fontsize=7, title=None)
    else:
        ax.scatter(s[ok], m[ok], s=14, alpha=0.7)
    ax.plot([0, 1], [0, 1], color="k", lw=0.6, ls=":")
    ax.axhline(0.5, color="grey", lw=0.4)
    ax.axvline(0.5, color="grey", lw=0.4)
    ax.set_xlabel("stated video share (reasoning cues)")
    ax.set_ylabel("measured video share (Shapley)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(min(-0.05, float(np.nanmin(m[ok])) - 0.05) if ok.any() else -0.05, 1.05)
    ax.set_title(title or f"n={int(ok.sum())}")
    return fig, ax


def plot_human_reference(result, clips, ax=None, title: str | None = None):
    """Scatter of the measured video - audio Shapley share against the human face - voice recognition
    rate (``meta["human_rates"]``, CREMA-D votes / RAVDESS ratings) of each attributed clip that has both."""
    from omnibench.attribution.human import human_rates
    from omnibench.data.indexers.common import PRESENTATIONS

    rates, _ = human_rates(clips, result.ids)
    face, voice = rates[:, PRESENTATIONS.index("face")], rates[:, PRESENTATIONS.index("voice")]
    x = result.share_of("video") - result.share_of("audio")
    ok = np.isfinite(x) & ~np.isnan(face) & ~np.isnan(voice)
    fig, ax = _ax(ax, figsize=(4, 4))
    ax.scatter(x[ok], (face - voice)[ok], s=14, alpha=0.7, color=COLORS["video"])
    ax.axhline(0, color="grey", lw=0.4)
    ax.axvline(0, color="grey", lw=0.4)
    ax.set_xlabel("measured video - audio share (Shapley)")
    ax.set_ylabel("human face - voice recognition rate")
    ax.set_title(title or f"n={int(ok.sum())}")
    return fig, ax


def plot_attribution_bar(phi: Mapping[str, float] | Sequence[float], players: Sequence[str] | None = None,
                         share: bool = True, ax=None, title: str | None = None):
    """Horizontal bars of one clip's Shapley values (or shares) per player."""
    if isinstance(phi, Mapping):
        players, vals = list(phi), np.array(list(phi.values()), float)
    else:
        vals = np.asarray(phi, float)
        players = list(players or ("video", "audio", "text")[: len(vals)])
    if share:
        tot = np.abs(vals).sum()
        vals = vals / tot if tot > 1e-12 else np.full_like(vals, np.nan)
    fig, ax = _ax(ax, figsize=(4, 0.6 + 0.45 * len(players)))
    ax.barh(players, np.nan_to_num(vals), color=[COLORS.get(p, "grey") for p in players])
    for i, v in enumerate(vals):
        ax.text(np.nan_to_num(v), i, f" {v:.2f}" if not np.isnan(v) else " n/a", va="center", fontsize=8)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("Shapley share" if share else "Shapley value")
    if share:
        ax.set_xlim(min(-0.05, float(np.nanmin(vals)) - 0.1) if not np.isnan(vals).all() else -0.05, 1.2)
    ax.invert_yaxis()
    if title:
        ax.set_title(title)
    return fig, ax


# ------------------------------------------------------------------------------------ media


def plot_frames(frames, ncols: int = 8, ax=None, title: str | None = None):
    """A grid of video frames ((T, H, W, 3) uint8) as one image."""
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    t, h, w, c = frames.shape
    ncols = max(1, min(ncols, t))
    nrows = -(-t // ncols)
    grid = np.full((nrows * h, ncols * w, c), 255, dtype=np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, ncols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = f
    fig, ax = _ax(ax, figsize=(1.2 * ncols, 1.2 * nrows + 0.3))
    ax.imshow(grid)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def plot_waveform(audio, sr: int = 16000, ax=None, title: str | None = None):
    """The waveform of mono audio."""
    audio = np.asarray(audio, float)
    fig, ax = _ax(ax, figsize=(5, 1.8))
    ax.plot(np.arange(len(audio)) / sr, audio, lw=0.5, color=COLORS["audio"])
    ax.set_xlabel("s")
    ax.set_xlim(0, len(audio) / sr if len(audio) else 1)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def plot_spectrogram(audio, sr: int = 16000, n_mels: int = 64, ax=None, title: str | None = None):
    """Log-mel spectrogram (librosa, dB) of mono audio."""
    import librosa
    import librosa.display

    y = np.asarray(audio, dtype=np.float32)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, n_fft=512, hop_length=160)
    db = librosa.power_to_db(mel, ref=np.max)
    fig, ax = _ax(ax, figsize=(5, 2.2))
    librosa.display.specshow(db, sr=sr, hop_length=160, x_axis="time", y_axis="mel", ax=ax, cmap="magma")
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def plot_audio(audio, sr: int = 16000, title: str | None = None, axes=None):
    """Waveform above its log-mel spectrogram; returns ``(fig, (ax_wave, ax_mel))``."""
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(5, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    else:
        fig = axes[0].figure
    plot_waveform(audio, sr, ax=axes[0], title=title)
    axes[0].set_xlabel("")
    plot_spectrogram(audio, sr, ax=axes[1])
    return fig, tuple(axes)


# ------------------------------------------------------------------------------------ training


def read_metrics_jsonl(path: str | os.PathLike):
    """A training metrics JSONL (one dict per logging step) as a DataFrame."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file {path} not found (written by omnibench sft/grpo)")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return pd.DataFrame(rows)


def plot_training_curves(metrics, keys: Sequence[str] | None = None, x: str = "step", ax=None,
                         title: str | None = None, smooth: int = 1):
    """Curves of ``keys`` (default: every numeric column except the x axis) against ``x`` from a
    metrics JSONL path or DataFrame; ``smooth`` = rolling-mean window."""
    import pandas as pd

    df = read_metrics_jsonl(metrics) if isinstance(metrics, (str, os.PathLike)) else pd.DataFrame(metrics)
    if x not in df:
        df = df.reset_index().rename(columns={"index": x})
    if keys is None:
        keys = [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c]) and c not in ("epoch",)]
    missing = [k for k in keys if k not in df]
    if missing:
        raise KeyError(f"metrics have no column(s) {missing}; available: {sorted(df.columns)}")
    fig, ax = _ax(ax, figsize=(5, 3))
    for k in keys:
        d = df[[x, k]].dropna()
        ax.plot(d[x], d[k].rolling(smooth, min_periods=1).mean(), label=k, lw=1.2)
    ax.set_xlabel(x)
    if len(keys) > 1:
        ax.legend(fontsize=7)
    else:
        ax.set_ylabel(keys[0])
    if title:
        ax.set_title(title)
    return fig, ax


def plot_perception(log, ax=None):
    """Held-out read-out accuracy of the tiny base model's towers during perception pre-training
    (``checkpoints/base/perception.jsonl``), one line per modality; the description stage's loss when
    the towers were not pre-trained."""
    import pandas as pd

    df = read_metrics_jsonl(log) if isinstance(log, (str, os.PathLike)) else pd.DataFrame(log)
    towers = df[df["stage"] == "towers"] if "stage" in df else df
    cols = [c for c in ("video_accuracy", "audio_accuracy") if c in towers and towers[c].notna().any()]
    if not cols:
        described = df[df["stage"] == "describe"] if "stage" in df else df.iloc[:0]
        if described.empty:
            raise KeyError(f"no tower read-out accuracy or description loss in {log}")
        return plot_training_curves(described, keys=["loss"], ax=ax, title="base model: description pre-training")
    fig, ax = _ax(ax, figsize=(5, 3))
    for c in cols:
        ax.plot(towers["step"], towers[c], marker="o", lw=1.2, label=c.split("_")[0])
    ax.set_xlabel("tower pre-training step")
    ax.set_ylabel("held-out read-out accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("base model: perception pre-training")
    return fig, ax
