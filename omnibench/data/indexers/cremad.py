"""CREMA-D: ``VideoFlash/AAAA_SSS_EEE_LL.flv`` + ``AudioWAV/AAAA_SSS_EEE_LL.wav`` (ActorID_Sentence_Emotion_Level).

Layout verified against public loaders. The flv videos and the wavs are separate files of the same
recording; by default a clip pairs them (a missing wav is counted), or uses the video's own track.

Human votes
    When ``processedResults/tabulatedVotes.csv`` (:data:`VOTES_FILE`) is under the root, each clip gets
    the human recognition rate of its intended emotion per presentation (see
    :func:`omnibench.data.indexers.common.human_meta`). The format, checked against the dataset's own
    repository (github.com/CheyneyComputerScience/CREMA-D: README.md "Tabulated Votes Columns",
    processFinishedResponses.R, tabulateVotesV2.r): written by R's ``write.csv``, a header
    ``"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote",...`` (27 columns),
    one row per clip x presentation (3 x 7,442 rows). ``A``..``S`` count the raters who answered
    anger, disgust, fear, happy, neutral, sad; ``fileName`` is the clip stem; ``numResponses`` their
    total. The first, unnamed column is the row id that tabulateVotesV2.r builds as
    ``100000 * queryType + clipNum``, with the README's ``queryType`` "1. voice only, 2. face only,
    3. audio-visual" (``clipNum``: the clip's row in SentenceFilenames.csv): ``"100001"`` is the
    voice-only row of clip 1 (1001_IEO_NEU_XX), ``"200001"`` its face-only row, ``"300001"`` its
    audio-visual row. The rate of presentation p is ``count[intended emotion] / numResponses``. On the
    published file the means over clips are 0.397 voice, 0.572 face, 0.629 audio-visual, matching the
    paper's figures (40.9%, 58.2%, 63.6%) to within a point: the encoding is the one read here.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from omnibench.data.indexers.common import (
    PRESENTATIONS,
    DatasetLayoutError,
    IndexContext,
    LabelCodeError,
    check_root,
    codes,
    human_meta,
    label_from_code,
    no_fold,
    nothing_found,
    read_rows,
)
from omnibench.data.manifest import Clip
from omnibench.labels import card

_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")

#: The votes file, relative to the dataset root (as in the CREMA-D repository).
VOTES_FILE = "processedResults/tabulatedVotes.csv"
#: Columns of :data:`VOTES_FILE` the indexer reads (the others are ignored): the vote counts per
#: answered emotion, the clip stem and the number of responses.
VOTE_COUNTS = ("A", "D", "F", "H", "N", "S")
VOTE_COLUMNS = (*VOTE_COUNTS, "fileName", "numResponses")
#: queryType (the row id // 100000) -> presentation; README: "1. - voice only, 2. face only, 3. audio-visual".
QUERY_TYPES = {1: "voice", 2: "face", 3: "both"}
#: Emotion code of the file name -> its vote-count column.
_VOTE_OF = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}


def read_votes(path) -> tuple[dict[str, dict[str, tuple[int, int]]], int]:
    """Read CREMA-D's ``tabulatedVotes.csv`` (format: the module docstring).

    Returns ``({stem: {presentation: (votes for the intended emotion, numResponses)}}, n_ignored)``,
    where ``n_ignored`` counts rows whose ``fileName`` is not a CREMA-D clip name (none in the
    published file). A malformed file raises :class:`DatasetLayoutError` naming the file and line:
    a missing column, a row with another number of fields than the header, a non-integer count or row
    id, a queryType other than 1/2/3, ``numResponses`` different from the sum of ``A``..``S``, or the
    same clip and presentation twice.
    """
    path = Path(path)
    rows = read_rows(path)
    fix = (
        "expected the file processFinishedResponses.R writes (a header "
        '"","A","D","F","H","N","S","fileName","numResponses",...); restore it from the CREMA-D repository'
    )
    if not rows:
        raise DatasetLayoutError(f"{path}: empty votes file; {fix}")
    head_line, header = rows[0]
    low = [h.lower() for h in header]
    if low[0] not in ("", "x"):
        raise DatasetLayoutError(
            f"{path}:{head_line}: the first column must be the unnamed row id (100000 * queryType + "
            f"clipNum), got a column named {header[0]!r}; {fix}"
        )
    missing = [c for c in VOTE_COLUMNS if c.lower() not in low[1:]]
    if missing:
        raise DatasetLayoutError(f"{path}:{head_line}: no column {missing} in the header {header}; {fix}")
    col = {c: 1 + low[1:].index(c.lower()) for c in VOTE_COLUMNS}
    out: dict[str, dict[str, tuple[int, int]]] = {}
    first: dict[tuple[str, str], int] = {}
    ignored = 0

    def integer(text: str, what: str, line: int) -> int:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if math.isnan(value) or math.isinf(value) or value != int(value) or value < 0:
            raise DatasetLayoutError(
                f"{path}:{line}: {what} must be a non-negative whole number, got {text!r}; fix or "
                f"restore that row"
            )
        return int(value)

    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise DatasetLayoutError(
                f"{path}:{line}: {len(cells)} fields, the header has {len(header)}; fix the row "
                f"(a stray or missing comma?)"
            )
        stem = cells[col["fileName"]]
        rid = integer(cells[0], "the row id (first column)", line)
        counts = {c: integer(cells[col[c]], f"column {c!r}", line) for c in VOTE_COUNTS}
        n = integer(cells[col["numResponses"]], "column 'numResponses'", line)
        qtype = rid // 100000
        if qtype not in QUERY_TYPES:
            raise DatasetLayoutError(
                f"{path}:{line}: row id {cells[0]!r} has queryType {qtype}; the id is 100000 * queryType "
                f"+ clipNum with queryType 1 (voice only), 2 (face only) or 3 (audio-visual)"
            )
        if n != sum(counts.values()):
            raise DatasetLayoutError(
                f"{path}:{line}: numResponses is {n} but A..S sum to {sum(counts.values())}; fix the row"
            )
        m = _CREMAD_NAME.match(stem)
        if not m or m.group(3) not in _VOTE_OF:
            ignored += 1
            continue
        pres = QUERY_TYPES[qtype]
        if (stem, pres) in first:
            raise DatasetLayoutError(
                f"{path}:{line}: a second {pres} row for {stem} (the first is on line "
                f"{first[(stem, pres)]}); keep one"
            )
        first[(stem, pres)] = line
        out.setdefault(stem, {})[pres] = (counts[_VOTE_OF[m.group(3)]], n)
    return out, ignored


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

    When ``processedResults/tabulatedVotes.csv`` is under ``root``, every clip's meta also gets
    ``human_rates`` ({voice, face, both}: proportion of raters who chose the intended emotion, None
    where that presentation has no votes), ``human_votes`` (numResponses per presentation, 0 where
    none), ``human_dominant`` ("face" / "voice" / None within
    :data:`~omnibench.data.indexers.common.HUMAN_MARGIN`) and ``human_source``. Clips the file has no
    row for are kept (rates None) and counted in the report (``counts["no_human_votes"]``).
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
    _attach_votes(clips, root, ctx)
    return clips


def _attach_votes(clips: list[Clip], root: Path, ctx: IndexContext) -> None:
    path = root / VOTES_FILE
    if not path.is_file():
        ctx.note(f"no {VOTES_FILE} under the root: no human recognition rates attached")
        return
    votes, ignored = read_votes(path)
    none = partial = 0
    for clip in clips:
        stem = clip.id[len("cremad-"):]
        got = votes.get(stem, {})
        rates = {p: (got[p][0] / got[p][1] if p in got and got[p][1] > 0 else None) for p in PRESENTATIONS}
        n = {p: (got[p][1] if p in got else 0) for p in PRESENTATIONS}
        if all(r is None for r in rates.values()):
            none += 1
        elif any(r is None for r in rates.values()):
            partial += 1
        clip.meta.update(human_meta(rates, VOTES_FILE, votes=n))
    ctx.count(
        "no_human_votes",
        none,
        f"{none} clips have no votes in {VOTES_FILE}: kept, with human_rates None",
    )
    ctx.count(
        "partial_human_votes",
        partial,
        f"{partial} clips have votes for some presentations only in {VOTES_FILE}: None for the others",
    )
    if ignored:
        ctx.note(f"{ignored} rows of {VOTES_FILE} name no CREMA-D clip (AAAA_SSS_EEE_LL): ignored")
