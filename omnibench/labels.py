"""Label sets and aliases, read from the data cards' YAML front matter (one source of truth).

Each card in ``data_cards/<name>.md`` starts with a YAML block holding ``labels`` (the canonical
labels the dataset uses) and ``aliases`` (spelling -> canonical label).  Canonical labels are
lower-case English words shared across datasets (``happy``, ``angry``, ``fear``, ...), so a model
trained on one dataset can be scored on another; the union of all cards' aliases maps any known
spelling ("Happiness", "fearful", "ANGER") to its canonical label.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import yaml

#: The seven DFEW classes, in DFEW's label order (1..7); SynthEmo and the default model use them.
DFEW7: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")


def cards_dir() -> Path:
    """Folder holding the data cards (``$OMNIBENCH_CARDS`` overrides the repository's ``data_cards/``)."""
    env = os.environ.get("OMNIBENCH_CARDS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data_cards"


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, flags=re.DOTALL)
    if not m:
        raise ValueError(f"{path}: no YAML front matter (a block between two '---' lines at the top)")
    data = yaml.safe_load(m.group(1)) or {}
    for key in ("name", "labels"):
        if key not in data:
            raise ValueError(f"{path}: front matter lacks the required key {key!r}")
    return data


@functools.cache
def all_cards() -> dict[str, dict]:
    """Every card's front matter, keyed by dataset name."""
    folder = cards_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"data cards folder {folder} not found; set OMNIBENCH_CARDS to the data_cards/ folder")
    cards = {}
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        card = _front_matter(path)
        cards[card["name"]] = card
    return cards


def card(dataset: str) -> dict:
    cards = all_cards()
    if dataset not in cards:
        raise KeyError(f"no data card for dataset {dataset!r}; known: {sorted(cards)} (folder {cards_dir()})")
    return cards[dataset]


def label_set(dataset: str = "synthemo") -> tuple[str, ...]:
    """The canonical labels of ``dataset``, in the card's order."""
    return tuple(card(dataset)["labels"])


def fold(text) -> str:
    """Case- and whitespace-folded text (``"  Happy \\n"`` -> ``"happy"``): how spellings are compared."""
    return re.sub(r"\s+", " ", str(text)).strip().lower()


@functools.cache
def alias_table() -> dict[str, str]:
    """Lower-cased spelling -> canonical label, over all cards (canonical labels map to themselves)."""
    table: dict[str, str] = {}
    for name, c in all_cards().items():
        for label in c["labels"]:
            table[fold(label)] = label
        for alias, label in (c.get("aliases") or {}).items():
            k = fold(alias)
            if k in table and table[k] != label:
                raise ValueError(f"data card {name}: alias {alias!r} -> {label!r} conflicts with {table[k]!r}")
            table[k] = label
    return table


def normalize_label(text: str | None) -> str | None:
    """Canonical label for a spelling ("Happiness", " happy ", "HAPPY" -> "happy"); None if unknown/empty."""
    if text is None:
        return None
    k = fold(text)
    if not k:
        return None
    return alias_table().get(k)


def labels_for(clips, default=None, dataset: str | None = None) -> tuple[str, ...]:
    """The label set a split is scored against: ``dataset``'s card when given, else the card of the clips'
    dataset (all clips of a split must come from one dataset that has a card), else ``default`` (the
    model's labels; DFEW7 when None). Each dataset keeps its own labels: DFEW 7, MAFW 11, RAVDESS 8."""
    if dataset:
        return label_set(dataset)
    names = {getattr(c, "dataset", None) for c in clips}
    known = set(all_cards())
    if len(names) == 1 and names <= known:
        return label_set(next(iter(names)))
    if len(names) > 1 and names & known:
        raise ValueError(f"the split mixes clips of several datasets {sorted(map(str, names))}; score each dataset's "
                         "split on its own (qualified split names such as dfew/test, mafw/test) or pass dataset=...")
    return tuple(default or DFEW7)
