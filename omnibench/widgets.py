"""The JupyterLab attribution dashboard (ipywidgets).

``AttributionDashboard(run_dir)`` reads a run folder (``data/manifest.jsonl`` and
``attribution.jsonl``, written by ``05_attribution.ipynb``) and shows two tabs:

* **Clip**: pick a split, a class, a SynthEmo condition and a clip; see its frames, its waveform and
  log-mel spectrogram, the reasoning the model generated, the measured Shapley shares (bar) and the
  share of visual cues its reasoning states;
* **Dataset**: for the chosen split, mean Shapley shares per class and per condition (with CIs) and
  the stated-vs-measured faithfulness scatter.

All logic runs without a browser: :meth:`AttributionDashboard.select` changes the selection the way
the dropdowns do, and :attr:`AttributionDashboard.shown` says what the outputs currently show, so
tests can check that choosing a clip updates every output. Figures are drawn with
:mod:`omnibench.plots` and shown as PNG ``Image`` widgets (no ``plt.show()``).
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ALL = "(all)"


def _png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _message_png(text: str, size=(4, 1.2)) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, color="#666", wrap=True)
    ax.set_axis_off()
    return _png(fig)


class AttributionDashboard:
    """Interactive view of one run's attribution (see the module docstring).

    Args:
        run_dir: the run folder; clips and attribution are read from it unless given.
        clips: manifest :class:`Clip` records (default: ``run_dir/data/manifest.jsonl``).
        attribution: an :class:`omnibench.attribution.AttributionResult` (default:
            ``run_dir/attribution.jsonl``); only its clips are offered.
        media_loader: ``clip -> Media`` (default: decode with the run's decode cache).
        n_boot: bootstrap resamples for the dataset-level CIs.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        clips: Sequence | None = None,
        attribution=None,
        media_loader: Callable | None = None,
        n_boot: int = 200,
    ):
        import ipywidgets as W

        from omnibench.attribution import AttributionResult

        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        if attribution is None:
            if self.run_dir is None:
                raise ValueError("give run_dir or attribution")
            path = self.run_dir / "attribution.jsonl"
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: run 05_attribution.ipynb against {self.run_dir} first")
            attribution = AttributionResult.load(path)
        if clips is None:
            if self.run_dir is None:
                raise ValueError("give run_dir or clips")
            from omnibench.data.manifest import read_manifest

            clips = read_manifest(self.run_dir / "data" / "manifest.jsonl", check_media=False)
        self.result = attribution
        self.n_boot = n_boot
        self._row = {cid: i for i, cid in enumerate(attribution.ids)}
        self.clips = {c.id: c for c in clips if c.id in self._row}
        missing = [cid for cid in attribution.ids if cid not in self.clips]
        if missing:
            raise ValueError(f"{len(missing)} attributed clip(s) are not in the manifest (e.g. {missing[:3]})")
        self._media_loader = media_loader or self._default_loader()
        self._dataset_split = None

        splits = sorted({c.split for c in self.clips.values()})
        labels = sorted({c.label for c in self.clips.values() if c.label}, key=str)
        conditions = sorted({str((c.meta or {}).get("condition")) for c in self.clips.values()
                             if (c.meta or {}).get("condition")})
        dd = {"layout": W.Layout(width="220px"), "style": {"description_width": "70px"}}
        self.split = W.Dropdown(options=splits, value=splits[0] if splits else None, description="split", **dd)
        self.label = W.Dropdown(options=[ALL] + labels, value=ALL, description="class", **dd)
        self.condition = W.Dropdown(options=[ALL] + conditions, value=ALL, description="condition", **dd)
        self.clip = W.Dropdown(options=[], description="clip", layout=W.Layout(width="330px"),
                               style={"description_width": "70px"})
        self.info = W.HTML()
        self.frames = W.Image(format="png", layout=W.Layout(max_width="760px"))
        self.audio = W.Image(format="png", layout=W.Layout(max_width="520px"))
        self.reasoning = W.HTML(layout=W.Layout(width="520px"))
        self.shapley = W.Image(format="png", layout=W.Layout(max_width="380px"))
        self.stated = W.HTML()
        self.dataset_plots = W.Image(format="png", layout=W.Layout(max_width="1000px"))
        self.dataset_info = W.HTML()

        for w in (self.split, self.label, self.condition):
            w.observe(self._on_filter, names="value")
        self.clip.observe(self._on_clip, names="value")

        clip_tab = W.VBox([
            W.HBox([self.split, self.label, self.condition, self.clip]),
            self.info,
            self.frames,
            W.HBox([self.audio, W.VBox([W.HTML("<b>generated reasoning</b>"), self.reasoning])]),
            W.HBox([self.shapley, self.stated]),
        ])
        data_tab = W.VBox([self.dataset_info, self.dataset_plots])
        self.tabs = W.Tab(children=[clip_tab, data_tab])
        self.tabs.set_title(0, "Clip")
        self.tabs.set_title(1, "Dataset")
        self.tabs.observe(self._on_tab, names="selected_index")
        self.widget = W.VBox([W.HTML(self._header()), self.tabs])
        self.widget.add_class("omnibench-dashboard")
        self._refresh_clips()

    # ------------------------------------------------------------------ public API
    def select(self, split: str | None = None, label: str | None = None, condition: str | None = None,
               clip: str | None = None) -> dict:
        """Set the dropdowns (None = leave as is) and return :attr:`shown`."""
        if split is not None:
            self.split.value = split
        if label is not None:
            self.label.value = label
        if condition is not None:
            self.condition.value = condition
        if clip is not None:
            if clip not in [v for _, v in self.clip.options]:
                raise ValueError(f"clip {clip!r} is not among the clips matching the current filters")
            self.clip.value = clip
        return self.shown

    @property
    def shown(self) -> dict:
        """What the outputs currently show (clip id, reasoning, Shapley values, stated share)."""
        return dict(self._shown)

    def filtered_ids(self) -> list[str]:
        """Attributed clip ids matching the split / class / condition dropdowns."""
        out = []
        for cid in self.result.ids:
            c = self.clips[cid]
            if c.split != self.split.value:
                continue
            if self.label.value != ALL and c.label != self.label.value:
                continue
            if self.condition.value != ALL and str((c.meta or {}).get("condition")) != self.condition.value:
                continue
            out.append(cid)
        return out

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ callbacks
    def _on_filter(self, change=None) -> None:
        self._refresh_clips()

    def _on_clip(self, change=None) -> None:
        self._render_clip(self.clip.value)

    def _on_tab(self, change=None) -> None:
        if self.tabs.selected_index == 1:
            self._render_dataset()

    def _refresh_clips(self) -> None:
        ids = self.filtered_ids()
        options = [(self._clip_title(cid), cid) for cid in ids]
        old = self.clip.value
        self.clip.unobserve(self._on_clip, names="value")
        try:
            self.clip.options = options
            self.clip.value = old if old in ids else (ids[0] if ids else None)
        finally:
            self.clip.observe(self._on_clip, names="value")
        self._render_clip(self.clip.value)
        if self.tabs.selected_index == 1:
            self._render_dataset()

    # ------------------------------------------------------------------ rendering
    def _header(self) -> str:
        r = self.result
        where = f" &middot; run <code>{html.escape(str(self.run_dir))}</code>" if self.run_dir else ""
        return (f"<b>omnibench attribution</b>: {len(r)} clips &middot; strategy <code>{r.strategy}</code> &middot; "
                f"value <code>{r.value_kind}</code> &middot; target <code>{r.target_kind}</code>{where}")

    def _clip_title(self, cid: str) -> str:
        i = self._row[cid]
        ok = "✓" if self.result.correct[i] else "✗"
        return f"{cid} [{self.result.gold[i]} → {self.result.prediction[i]} {ok}]"

    def _default_loader(self) -> Callable:
        """Decode with the settings the attribution stage used (``metrics.json`` ``attribution.decode``,
        written by :func:`omnibench.stages.attribution_stage` from the notebook and the CLI alike); a clip
        without audio is shown without it."""
        from omnibench.data.media import DecodeConfig, MediaStore

        if self.run_dir is None:
            store = MediaStore(list(self.clips.values()), DecodeConfig(missing_audio="keep"), max_items=64)
            return lambda clip: store(clip.id)
        from omnibench.run import open_run

        run = open_run(self.run_dir, create=False)
        used = run.read_metrics().get("attribution", {}).get("decode")
        if used is None:
            raise FileNotFoundError(f"{run.metrics_path} has no attribution.decode: run the attribution stage "
                                    f"(05_attribution.ipynb or omnibench attribute) into {run.path} first")
        store = MediaStore(list(self.clips.values()), DecodeConfig.coerce({**used, "missing_audio": "keep"}),
                           cache=run.decode_cache, max_items=64)
        return lambda clip: store(clip.id)

    def _render_clip(self, cid: str | None) -> None:
        from omnibench import plots

        if cid is None:
            msg = "no clip matches these filters"
            self.info.value = f"<i>{msg}</i>"
            self.frames.value = _message_png(msg)
            self.audio.value = _message_png("-")
            self.reasoning.value = "<i>-</i>"
            self.shapley.value = _message_png("-")
            self.stated.value = ""
            self._shown = {"clip": None, "reasoning": None, "phi": None, "share": None, "stated_video_share": None}
            return
        r, i, clip = self.result, self._row[cid], self.clips[cid]
        meta = clip.meta or {}
        self.info.value = (
            f"<b>{html.escape(cid)}</b> &middot; split {html.escape(clip.split)} &middot; gold <b>{html.escape(str(clip.label))}</b>"
            f" &middot; condition <b>{html.escape(str(meta.get('condition', '-')))}</b>"
            f" (face: {html.escape(str(meta.get('video_label', '-')))}, voice: {html.escape(str(meta.get('audio_label', '-')))})"
            f" &middot; model answer <b>{html.escape(str(r.prediction[i]))}</b>"
            f" {'(correct)' if r.correct[i] else '(wrong)'}")
        try:
            media = self._media_loader(clip)
        except Exception as e:  # noqa: BLE001 - show the decoding error where the media would be
            media = None
            err = f"{type(e).__name__}: {e}"
        if media is not None and media.frames is not None:
            fig, _ = plots.plot_frames(media.frames, ncols=len(media.frames), title="frames")
            self.frames.value = _png(fig)
        else:
            self.frames.value = _message_png("no video" if media is not None else err, size=(6, 1))
        if media is not None and media.audio is not None:
            fig, _ = plots.plot_audio(media.audio, media.sr, title="voice")
            self.audio.value = _png(fig)
        else:
            self.audio.value = _message_png("no audio" if media is not None else err)
        text = r.completion[i]
        self.reasoning.value = (f"<pre style='white-space:pre-wrap;font-size:12px'>{html.escape(text)}</pre>"
                                if text else "<i>no generated reasoning stored for this clip</i>")
        phi = {p: float(r.phi[i, j]) for j, p in enumerate(r.players)}
        fig, _ = plots.plot_attribution_bar(phi, title=f"measured Shapley share (target: {r.target[i]})")
        self.shapley.value = _png(fig)
        stated = None if r.stated_video_share is None else float(r.stated_video_share[i])
        if stated is None:
            self.stated.value = "<i>no stated cue share (no reasoning)</i>"
        elif np.isnan(stated):
            self.stated.value = "<b>stated cue share</b>: the reasoning names no cue"
        else:
            nv = int(r.n_cues_video[i]) if r.n_cues_video is not None else "?"
            na = int(r.n_cues_audio[i]) if r.n_cues_audio is not None else "?"
            measured = r.share_of("video")[i] if "video" in r.players else float("nan")
            self.stated.value = (
                f"<b>stated cue share</b> (reasoning): video {stated:.2f} / audio {1 - stated:.2f} "
                f"<small>({nv} visual, {na} vocal cue words)</small><br>"
                f"<b>measured</b> (Shapley): video {measured:.2f}")
        self._shown = {"clip": cid, "reasoning": text, "phi": phi,
                       "share": {p: float(r.share[i, j]) for j, p in enumerate(r.players)},
                       "stated_video_share": stated}

    def _render_dataset(self) -> None:
        """Dataset-level figures for the chosen split (drawn when the tab is opened or the split changes)."""
        import matplotlib.pyplot as plt

        from omnibench import plots

        split = self.split.value
        if split == self._dataset_split:
            return
        self._dataset_split = split
        sel = np.array([self.clips[cid].split == split for cid in self.result.ids])
        sub = self.result.subset(sel)
        if len(sub) == 0:
            self.dataset_plots.value = _message_png(f"no attributed clips in {split}")
            self.dataset_info.value = ""
            return
        ncols = 3 if sub.stated_video_share is not None else 2
        fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.8))
        plots.plot_shares(sub.by_class(n_boot=self.n_boot), ax=axes[0], title=f"{split}: share per class")
        plots.plot_shares(sub.by_condition(n_boot=self.n_boot), ax=axes[1], title=f"{split}: share per condition")
        if ncols == 3:
            plots.plot_faithfulness(sub.stated_video_share, sub.share_of("video"), labels=sub.condition, ax=axes[2])
            axes[2].set_title("stated vs measured video share")
        fig.tight_layout()
        self.dataset_plots.value = _png(fig)
        val = sub.validation()
        self.dataset_info.value = f"<b>{html.escape(split)}</b>: {len(sub)} clips, accuracy {sub.correct.mean():.2f}; " + \
            "; ".join(f"{m}-only clips with share &gt; 0.5: {v['share_ok']:.2f} (n={v['n']})" for m, v in val.items()
                      if v["n"])


def dashboard(run_dir: str | os.PathLike, **kwargs) -> AttributionDashboard:
    """Build the dashboard for a run folder (display it with ``display(d.widget)`` or as the cell's value)."""
    return AttributionDashboard(run_dir, **kwargs)
