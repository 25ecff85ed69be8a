"""Dashboard logic without a browser: filters narrow the clip list, choosing a clip updates every output."""

from __future__ import annotations

import ipywidgets  # noqa: F401 - a hard dependency: a broken install fails here, never skips
import numpy as np
import pytest

from omnibench.attribution import AttributionResult, shapley_matrix, shares
from omnibench.data.manifest import Clip
from omnibench.data.media import synth_media
from omnibench.widgets import ALL, AttributionDashboard

CLIPS = [
    # id, split, gold, condition, prediction, completion
    ("c0", "test_id", "happy", "video", "happy", "<think>The face shows a wide smile.</think><answer>happy</answer>"),
    ("c1", "test_id", "angry", "audio", "angry", "<think>The voice has a loud rough growl.</think><answer>angry</answer>"),
    ("c2", "test_id", "sad", "both", "fear", "<think>Face and voice agree.</think><answer>fear</answer>"),
    ("c3", "test_ood", "happy", "audio", "happy", None),
]


def _clips():
    return [Clip(id=i, video=f"{i}.mp4", label=g, split=s, meta={"condition": c, "video_label": g, "audio_label": g})
            for i, s, g, c, _, _ in CLIPS]


def _result():
    n = len(CLIPS)
    # v(none), v(video), v(audio), v(video+audio) as coalitions() orders them: (), (video,), (audio,), (video, audio)
    values = np.array([[0.1, 0.9, 0.2, 0.95], [0.1, 0.15, 0.8, 0.9], [0.1, 0.4, 0.4, 0.6], [0.2, 0.2, 0.7, 0.7]])
    phi = shapley_matrix(values, 2)
    res = AttributionResult(
        ids=[c[0] for c in CLIPS], gold=[c[2] for c in CLIPS], prediction=[c[4] for c in CLIPS],
        target=[c[4] for c in CLIPS], condition=[c[3] for c in CLIPS], players=("video", "audio"),
        values=values, phi=phi, share=shares(phi),
    )
    res.with_reasoning([c[5] for c in CLIPS], lexicon={"video": ["face", "smile"], "audio": ["voice", "growl", "loud"]})
    assert len(res) == n
    return res


def _loader(clip):
    k = int(clip.id[1:])
    frames = np.full((4, 16, 16, 3), 40 * k, dtype=np.uint8)
    audio = np.sin(np.linspace(0, 200 * (k + 1), 8000)).astype(np.float32)
    return synth_media(frames, audio, clip_id=clip.id)


@pytest.fixture
def dash():
    return AttributionDashboard(clips=_clips(), attribution=_result(), media_loader=_loader, n_boot=20)


def test_initial_state_shows_first_clip_of_first_split(dash):
    assert dash.split.options == ("test_id", "test_ood")
    assert dash.clip.value == "c0"
    s = dash.shown
    assert s["clip"] == "c0" and "wide smile" in s["reasoning"]
    assert s["share"]["video"] > 0.5 and s["stated_video_share"] == 1.0
    assert dash.frames.value[:4] == b"\x89PNG" and dash.shapley.value[:4] == b"\x89PNG"
    assert "c0" in dash.info.value and "happy" in dash.info.value


def test_selecting_a_clip_updates_every_output(dash):
    before = {k: getattr(dash, k).value for k in ("frames", "audio", "shapley", "reasoning", "stated", "info")}
    shown = dash.select(clip="c1")
    assert shown["clip"] == "c1" and "growl" in shown["reasoning"]
    assert shown["share"]["audio"] > 0.5 and shown["stated_video_share"] == 0.0
    for k, v in before.items():
        assert getattr(dash, k).value != v, f"{k} did not change"
    # setting the dropdown (what a user does) triggers the same update
    dash.clip.value = "c2"
    assert dash.shown["clip"] == "c2" and "fear" in dash.info.value and "(wrong)" in dash.info.value


def test_filters_narrow_the_clip_list(dash):
    dash.select(condition="audio")
    assert [v for _, v in dash.clip.options] == ["c1"] and dash.shown["clip"] == "c1"
    dash.select(condition=ALL, label="happy")
    assert [v for _, v in dash.clip.options] == ["c0"]
    dash.select(split="test_ood")
    assert [v for _, v in dash.clip.options] == ["c3"]
    assert dash.shown["reasoning"] is None and "no generated reasoning" in dash.reasoning.value
    dash.select(label="angry")
    assert dash.clip.options == () and dash.shown["clip"] is None
    assert "no clip matches" in dash.info.value
    with pytest.raises(ValueError, match="not among the clips"):
        dash.select(clip="c0")


def test_dataset_tab_draws_for_the_chosen_split(dash):
    assert dash.dataset_plots.value == b""  # drawn lazily, when the tab is opened
    dash.tabs.selected_index = 1
    png_id = dash.dataset_plots.value
    assert png_id[:4] == b"\x89PNG" and "test_id" in dash.dataset_info.value
    dash.select(split="test_ood")
    assert dash.dataset_plots.value != png_id and "test_ood" in dash.dataset_info.value


def test_missing_run_folder_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="attribution.jsonl not found"):
        AttributionDashboard(tmp_path)
    with pytest.raises(ValueError, match="not in the manifest"):
        AttributionDashboard(clips=_clips()[:2], attribution=_result(), media_loader=_loader)


def test_default_loader_decodes_with_the_settings_the_attribution_stage_used(tmp_path, mp4_factory):
    from omnibench.run import RunFolder

    run = RunFolder(tmp_path / "run")
    clips = [Clip(id=c.id, video=str(mp4_factory(f"{c.id}.mp4", seed=k)), label=c.label, split=c.split, meta=c.meta)
             for k, c in enumerate(_clips())]
    with pytest.raises(FileNotFoundError, match="no attribution.decode: run the attribution stage"):
        AttributionDashboard(run.path, clips=clips, attribution=_result(), n_boot=20)
    # what attribution_stage records: the checkpoint's settings with the stage's overrides applied
    run.update_metrics("attribution", {"decode": {"num_frames": 4, "size": 32, "sr": 16000, "max_audio_s": None,
                                                  "missing_audio": "error"}})
    d = AttributionDashboard(run.path, clips=clips, attribution=_result(), n_boot=20)
    assert d._media_loader(clips[0]).frames.shape == (4, 32, 32, 3)  # the stage's, not 8 x 112
