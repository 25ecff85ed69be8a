"""CREMA-D: ``VideoFlash/AAAA_SSS_EEE_LL.flv`` + ``AudioWAV/AAAA_SSS_EEE_LL.wav`` (ActorID_Sentence_Emotion_Level).

Layout verified against public loaders. The flv videos and the wavs are separate files of the same
recording; by default a clip pairs them (a missing wav is counted), or uses the video's own track.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omnibench.data.indexers.common import (
    IndexContext,
    LabelCodeError,
    check_root,
    codes,
    label_from_code,
    no_fold,
    nothing_found,
)
from omnibench.data.manifest import Clip
from omnibench.labels import card

_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def index_cremad(
    root,
    fold: int | None = None,
    *,
    mode: str = "av",
    audio: str = "wav",
    split: str = "test",
    ctx: IndexContext,
) -> list[Clip]:
    """CREMA-D clips from ``ActorID_Sentence_Emotion_Level`` names; split "test" (OOD) by default.

    Args:
        mode: ``"av"`` a clip per video file (VideoFlash/*.flv, or mp4 copies); ``"audio"`` a clip
            per AudioWAV/*.wav with no video.
        audio: for ``mode="av"``: ``"wav"`` (default) pairs the video with the wav of the same name as
            its separate audio file (missing wavs are counted); ``"track"`` uses the video's own track.
    """
    no_fold("cremad", fold)
    if mode not in ("av", "audio"):
        raise ValueError(f"cremad: mode must be 'av' or 'audio', got {mode!r}")
    if audio not in ("wav", "track"):
        raise ValueError(f"cremad: audio must be 'wav' or 'track', got {audio!r}")
    root = Path(root)
    check_root("cremad", root)
    table = codes("cremad")
    levels = card("cremad").get("levels") or {}
    videos: dict[str, Path] = {}
    wavs: dict[str, Path] = {}
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            stem, ext = os.path.splitext(fname)
            ext = ext.lower()
            if not _CREMAD_NAME.match(stem):
                continue
            if ext in (".flv", ".mp4", ".avi"):
                old = videos.get(stem)
                if old is None or (old.suffix.lower() != ".flv" and ext == ".flv"):
                    videos[stem] = Path(dirpath) / fname
            elif ext == ".wav":
                wavs[stem] = Path(dirpath) / fname
    primary = videos if mode == "av" else wavs
    if not primary:
        what = (
            "no VideoFlash/AAAA_SSS_EEE_LL.flv videos"
            if mode == "av"
            else "no AudioWAV/AAAA_SSS_EEE_LL.wav files"
        )
        raise nothing_found("cremad", root, what)
    clips = []
    for stem, path in sorted(primary.items()):
        actor, sentence, emo, level = _CREMAD_NAME.match(stem).groups()
        label = label_from_code("cremad", emo, str(path), table)
        if level not in levels:
            raise LabelCodeError(f"{path}: unknown CREMA-D level {level!r}; known: {sorted(levels)}")
        video, aud = (str(path), None) if mode == "av" else (None, str(path))
        if mode == "av" and audio == "wav":
            wav = wavs.get(stem)
            if wav is None:
                ctx.missing(str(root / "AudioWAV" / f"{stem}.wav"))
                continue
            aud = str(wav)
        clips.append(
            Clip(
                id=f"cremad-{stem}",
                video=video,
                audio=aud,
                label=label,
                split=split,
                dataset="cremad",
                meta={"actor": actor, "sentence": sentence, "level": levels[level]},
            )
        )
    return clips
