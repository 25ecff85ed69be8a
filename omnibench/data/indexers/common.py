"""What every dataset indexer shares: its errors, its report, the run context and the small readers.

Kept apart from the per-dataset modules so that each of those reads in one sitting and holds only
what is particular to its dataset (folder names, file-name codes, columns); the rules that must be
the same everywhere live here once:

* a native label code becomes a canonical label through the card's ``codes`` table, else through the
  cards' aliases (:func:`label_from_code`); an unknown code is a :class:`LabelCodeError` naming the
  file and line;
* a referenced media file that is not there is counted in the :class:`IndexReport` and its clip left
  out, or raises with ``on_missing="error"`` (:class:`IndexContext`);
* an empty or foreign folder is a :class:`DatasetLayoutError` that prints the expected layout;
* human perception data (CREMA-D's votes, RAVDESS's validity ratings) go into a clip's ``meta`` in one
  shape, :func:`human_meta`, with the human-dominant modality from :func:`human_dominant`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omnibench.labels import card, normalize_label

VIDEO_EXTS = (".mp4", ".avi", ".flv", ".mkv", ".mov", ".webm")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".m4a")

#: ``fold=`` value that indexes every fold of DFEW / MAFW in one manifest.
ALL_FOLDS = "all"

#: Fallback layout descriptions for sources without a data card (cards' ``layout`` key wins).
LAYOUTS: dict[str, str] = {
    "r1omni": 'a JSON file: [{"video": "rel/path.mp4", "conversations": [{"from": "human", "value": "<video>\\n<audio>\\n..."}, '
    '{"from": "gpt", "value": "<think>..</think>\\n<answer>label</answer>"}]}, ...]',
    "manifest": "an omnibench manifest .jsonl (see omnibench.data.manifest)",
}


class DatasetLayoutError(ValueError):
    """A dataset folder that does not match the expected layout, or holds an unusable entry."""


class LabelCodeError(DatasetLayoutError):
    """A label code that the dataset's card does not know (the message names file and line)."""


@dataclass
class IndexReport:
    """What an indexer found: clips indexed, media missing, labels outside the cards, notes on choices.

    ``unknown_labels`` maps each answer text outside the data cards to the number of records that
    carry it; ``open_vocab`` says whether those records were kept (as open-vocabulary labels) or
    skipped. ``unparseable`` lists records whose answer could not be read (skipped).
    """

    dataset: str
    root: str
    indexed: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    open_vocab: bool = False
    unparseable: list[str] = field(default_factory=list)
    #: named counts of clips kept with something absent (e.g. ``no_human_votes``: CREMA-D clips the
    #: votes file has no row for); each is also explained in a note.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Records left out for a reason other than missing media (labels outside the cards, no answer)."""
        dropped = 0 if self.open_vocab else sum(self.unknown_labels.values())
        return dropped + len(self.unparseable)

    def summary(self, max_list: int = 5) -> str:
        lines = [
            f"{self.dataset}: {self.indexed} clips indexed, {len(self.missing)} missing media files (root {self.root})"
        ]
        for path in self.missing[:max_list]:
            lines.append(f"  missing: {path}")
        if len(self.missing) > max_list:
            lines.append(f"  ... and {len(self.missing) - max_list} more")
        if self.unknown_labels:
            n = sum(self.unknown_labels.values())
            how = (
                "kept as open-vocabulary labels (meta open_vocab)"
                if self.open_vocab
                else "skipped; keep them with --open-vocab (open_vocab=True), or add an alias to a data card"
            )
            lines.append(f"  {n} records with labels outside the data cards, {how}:")
            for label, count in sorted(self.unknown_labels.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {label!r}: {count}")
        if self.unparseable:
            lines.append(f"  {len(self.unparseable)} records without a readable answer, skipped:")
            lines += [f"    {w}" for w in self.unparseable[:max_list]]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class IndexContext:
    """Shared state of one indexing run: the report and the missing-media policy."""

    def __init__(self, dataset: str, root: Path, on_missing: str):
        if on_missing not in ("skip", "error"):
            raise ValueError(f"on_missing must be 'skip' or 'error', got {on_missing!r}")
        self.dataset = dataset
        self.root = root
        self.on_missing = on_missing
        self.report = IndexReport(dataset, str(root))

    def missing(self, what: str) -> None:
        if self.on_missing == "error":
            raise DatasetLayoutError(
                f"{self.dataset}: referenced media file not found: {what} (root {self.root})"
            )
        self.report.missing.append(what)

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    def count(self, name: str, n: int, text: str) -> None:
        """Record ``counts[name] = n`` and explain it in a note (nothing when ``n == 0``)."""
        if n:
            self.report.counts[name] = self.report.counts.get(name, 0) + int(n)
            self.note(text)


# --------------------------------------------------------------------------------------------
# human perception (CREMA-D votes, RAVDESS validity ratings)

#: The presentations human raters saw: the voice alone, the face alone, both together. The keys of
#: ``meta["human_rates"]`` (and of RAVDESS's ``meta["presentations"]``).
PRESENTATIONS = ("voice", "face", "both")

#: A clip's humans "clearly favour" one modality when its face-only and voice-only recognition rates
#: differ by more than this (a proportion). CREMA-D clips have about 10 votes per presentation
#: (median 10, min 4) and RAVDESS files 10 ratings each, so 0.2 is two raters in ten: a difference
#: of one or two raters is within the noise of the rating, and :func:`human_dominant` calls it None.
#: On CREMA-D's published votes about 57% of the clips clear it (43% face, 14% voice).
HUMAN_MARGIN = 0.2


def human_dominant(face: float | None, voice: float | None, margin: float = HUMAN_MARGIN) -> str | None:
    """``"face"`` / ``"voice"`` when that presentation's recognition rate is higher by more than
    ``margin``; None when they are within it, or when either rate is missing (None or NaN)."""
    if face is None or voice is None:
        return None
    face, voice = float(face), float(voice)
    if math.isnan(face) or math.isnan(voice):
        return None
    diff = face - voice
    tol = 1e-9  # 0.3 - 0.1 is 0.19999999999999998: a difference of exactly `margin` is within it
    if diff > margin + tol:
        return "face"
    if diff < -margin - tol:
        return "voice"
    return None


def human_meta(rates: dict, source: str, votes: dict | None = None, margin: float = HUMAN_MARGIN) -> dict:
    """The meta fields a clip gets from human perception data (JSON-safe)::

        {"human_rates": {"voice": 0.4 | None, "face": 0.9 | None, "both": 1.0 | None},
         "human_dominant": "face" | "voice" | None,
         "human_source": "processedResults/tabulatedVotes.csv",
         "human_votes": {"voice": 10, "face": 9, "both": 0}}      # only when ``votes`` is given

    ``human_rates[p]`` is the proportion of raters of presentation ``p`` who chose the clip's intended
    emotion (None where nobody rated that presentation); ``human_dominant`` is
    :func:`human_dominant` of the face and voice rates with ``margin``.
    """
    r = {p: (None if rates.get(p) is None else float(rates[p])) for p in PRESENTATIONS}
    out = {
        "human_rates": r,
        "human_dominant": human_dominant(r["face"], r["voice"], margin),
        "human_source": str(source),
    }
    if votes is not None:
        out["human_votes"] = {p: int(votes.get(p) or 0) for p in PRESENTATIONS}
    return out


# --------------------------------------------------------------------------------------------
# labels


def code_key(code) -> str:
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text.lower()


def codes(dataset: str) -> dict[str, str]:
    """The card's native code table, keys normalised by :func:`code_key`."""
    table = card(dataset).get("codes") or {}
    return {code_key(k): v for k, v in table.items()}


def label_from_code(dataset: str, code, where: str, table: dict[str, str] | None = None) -> str:
    """Canonical label for a native code (card ``codes`` first, then aliases); error naming ``where``."""
    table = codes(dataset) if table is None else table
    label = table.get(code_key(code))
    if label is None and not str(code).strip().isdigit():
        label = normalize_label(str(code))
    allowed = card(dataset)["labels"]
    if label is None or label not in allowed:
        known = sorted({str(k) for k in (card(dataset).get("codes") or {})}) or allowed
        raise LabelCodeError(f"{where}: unknown {dataset} label code {str(code)!r}; known codes: {known}")
    return label


# --------------------------------------------------------------------------------------------
# layout checks


def layout(name: str) -> str:
    """The expected layout of ``name``: its card's ``layout`` key, else :data:`LAYOUTS`."""
    try:
        text = card(name).get("layout")
    except KeyError:  # r1omni, manifest: no data card
        text = None
    return str(text or LAYOUTS.get(name, "")).rstrip()


def check_root(name: str, root: Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"{name}: root {root} does not exist; expected layout:\n{layout(name)}")


def nothing_found(name: str, root: Path, what: str) -> DatasetLayoutError:
    return DatasetLayoutError(f"{name}: {what} under {root}; expected layout:\n{layout(name)}")


def pick_dir(root: Path, given: str | None, candidates: Sequence[str]) -> Path | None:
    """``given`` (relative to root) if set, else the first existing candidate folder, else None."""
    if given is not None:
        p = Path(given)
        p = p if p.is_absolute() else root / p
        if not p.is_dir():
            raise FileNotFoundError(f"video_dir {p} does not exist")
        return p
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None


def folds(name: str, fold: int | str | None, ctx: IndexContext) -> list[int]:
    """The folds to index: ``[fold]``, every fold for ``"all"``, fold 1 (noted) when not given."""
    n_folds = int(card(name).get("folds", 5))
    if fold is None:
        ctx.note(f"fold not given: using fold 1 of {n_folds} (pass --fold N, or --fold all)")
        return [1]
    if str(fold).strip().lower() == ALL_FOLDS:
        return list(range(1, n_folds + 1))
    try:
        value = int(fold)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: fold must be in 1..{n_folds} or 'all', got {fold!r}") from None
    if not 1 <= value <= n_folds:
        raise ValueError(f"{name}: fold must be in 1..{n_folds} or 'all', got {fold}")
    return [value]


def fold_suffix(fold: int, all_folds: bool) -> str:
    """``"@fold3"`` when every fold is indexed into one manifest (split names and clip ids), else ``""``."""
    return f"@fold{fold}" if all_folds else ""


def no_fold(name: str, fold) -> None:
    if fold is not None:
        raise ValueError(f"{name} has no folds (got fold={fold}); leave --fold out")


# --------------------------------------------------------------------------------------------
# files


def files_by_stem(folder: Path, exts: Sequence[str]) -> dict[str, Path]:
    """stem -> path for media files below ``folder`` (recursive); the first extension in ``exts`` wins."""
    found: dict[str, Path] = {}
    rank = {e: i for i, e in enumerate(exts)}
    for dirpath, _dirs, files in os.walk(folder):
        for fname in files:
            ext = os.path.splitext(fname)[1].lower()
            if ext in rank:
                stem = os.path.splitext(fname)[0]
                path = Path(dirpath) / fname
                old = found.get(stem)
                if (
                    old is None
                    or rank[ext] < rank[old.suffix.lower()]
                    or (rank[ext] == rank[old.suffix.lower()] and str(path) < str(old))
                ):
                    found[stem] = path
    return found


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every non-empty row of a CSV file (BOM and stray spaces removed)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)  # line_num: the file line a row ends on (quoted fields may span lines)
            return [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError as e:  # never guess: a replaced byte could change a clip id or a label
        raise DatasetLayoutError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); re-save it as UTF-8") from None


def column(header: list[str], names: Iterable[str], path: Path) -> int:
    """Index of the first of ``names`` in ``header`` (case-insensitive); an error naming the file."""
    low = [h.strip().lower() for h in header]
    names = list(names)
    for name in names:
        if name in low:
            return low.index(name)
    raise DatasetLayoutError(f"{path}: no column named any of {names} in header {header}")
