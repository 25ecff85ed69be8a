"""``omnibench index``: index a dataset folder, or merge manifests, into one manifest (or R1-Omni JSON)."""

from __future__ import annotations

import argparse

from omnibench.data.indexers.common import ALL_FOLDS, DatasetLayoutError
from omnibench.data.indexers.merge import merge_with_reports, split_counts
from omnibench.data.indexers.r1omni import export_r1omni
from omnibench.data.indexers.registry import INDEXERS, index_with_report
from omnibench.data.manifest import ManifestError, write_manifest


def _fold_arg(text: str) -> int | str:
    if text.strip().lower() == ALL_FOLDS:
        return ALL_FOLDS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fold takes a number 1..5 or 'all', got {text!r}") from None


def add_index_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench index``."""
    parser.add_argument("--dataset", default=None, choices=sorted(INDEXERS), help="dataset layout to read")
    parser.add_argument(
        "--root", default=None, help="dataset folder (r1omni/manifest: the .json/.jsonl file)"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="MANIFEST",
        help="merge these manifests (and the --dataset/--root index, if given) into --out; split names "
        "are qualified by dataset (dfew/test, mafw/test, ...), colliding clip ids renamed",
    )
    parser.add_argument("--out", required=True, help="output manifest .jsonl (or .json with --format r1omni)")
    parser.add_argument(
        "--fold",
        type=_fold_arg,
        default=None,
        help="DFEW/MAFW fold 1..5 (default 1), or 'all': every fold, split names train@foldN / test@foldN",
    )
    parser.add_argument(
        "--format",
        default="manifest",
        choices=("manifest", "r1omni"),
        help="write an omnibench manifest (default) or R1-Omni training JSON",
    )
    parser.add_argument(
        "--style",
        default="auto",
        choices=("auto", "cold_start", "rl"),
        help="R1-Omni export: gpt turn = reasoning (cold_start) or bare label (rl)",
    )
    parser.add_argument(
        "--on-missing",
        default="skip",
        choices=("skip", "error"),
        help="referenced media not found: skip and report (default) or fail",
    )
    parser.add_argument(
        "--split",
        default=None,
        help="split name for ravdess/cremad (default test) and r1omni (default: cold_start for records "
        "with reasoning, train for label-only records)",
    )
    parser.add_argument("--splits", default=None, help="mer2023/meld: comma-separated subset of splits")
    parser.add_argument(
        "--open-vocab",
        action="store_true",
        default=None,
        help="r1omni: keep records whose label no data card knows, as open-vocabulary labels (default: "
        "skip them; either way each such label is counted)",
    )
    parser.add_argument(
        "--name", default=None, help="r1omni: the clips' dataset name (default r1omni; e.g. emer)"
    )
    parser.add_argument(
        "--video-dir", default=None, help="dfew/mafw: folder of the video files (relative to root)"
    )
    parser.add_argument(
        "--video-root", default=None, help="r1omni: folder the JSON's video paths are relative to"
    )
    parser.add_argument(
        "--pair",
        default=None,
        choices=("av", "video+wav", "audio"),
        help="ravdess: AV files (default), video-only + matching wav, or wav only",
    )
    parser.add_argument(
        "--channel", default=None, choices=("speech", "song", "all"), help="ravdess vocal channel"
    )
    parser.add_argument(
        "--mode", default=None, choices=("av", "audio"), help="cremad: video clips or wav only"
    )
    parser.add_argument(
        "--audio",
        default=None,
        choices=("wav", "track"),
        help="cremad: separate wav (default) or the video's own audio track",
    )
    return parser


#: CLI flag (attribute) -> (indexer option, datasets it applies to)
_CLI_OPTS = {
    "split": ("split", ("ravdess", "cremad", "r1omni")),
    "splits": ("splits", ("mer2023", "meld")),
    "open_vocab": ("open_vocab", ("r1omni",)),
    "name": ("dataset", ("r1omni",)),
    "video_dir": ("video_dir", ("dfew", "mafw")),
    "video_root": ("video_root", ("r1omni",)),
    "pair": ("pair", ("ravdess",)),
    "channel": ("channel", ("ravdess",)),
    "mode": ("mode", ("cremad",)),
    "audio": ("audio", ("cremad",)),
}


def _index_opts(args: argparse.Namespace) -> dict:
    opts = {}
    for attr, (option, allowed) in _CLI_OPTS.items():
        value = getattr(args, attr, None)
        if value is None:
            continue
        if args.dataset not in allowed:
            raise SystemExit(
                f"--{attr.replace('_', '-')} applies to {', '.join(allowed)}, not {args.dataset}"
            )
        opts[option] = value
    return opts


def cli_index(args: argparse.Namespace) -> int:
    """``omnibench index``: index a dataset (or merge manifests) and write a manifest or R1-Omni JSON.

    Prints each source's summary (missing media, labels outside the cards with their counts) and the
    clips per split written.
    """
    merge = list(getattr(args, "merge", None) or [])
    if args.dataset is None and not merge:
        raise SystemExit("omnibench index: give --dataset NAME --root PATH, or --merge M1.jsonl M2.jsonl ...")
    if (args.dataset is None) != (args.root is None):
        raise SystemExit("omnibench index: --dataset and --root go together")
    opts = _index_opts(args) if args.dataset else {}
    try:
        if merge:
            sources: list = list(merge)
            if args.dataset:
                sources.append(
                    {
                        "dataset": args.dataset,
                        "root": args.root,
                        "fold": args.fold,
                        "on_missing": args.on_missing,
                        **opts,
                    }
                )
            clips, reports = merge_with_reports(sources, on_missing=args.on_missing)
        else:
            clips, report = index_with_report(
                args.dataset, args.root, args.fold, on_missing=args.on_missing, **opts
            )
            reports = [report]
    except (
        DatasetLayoutError,
        ManifestError,
        FileNotFoundError,
        ValueError,
    ) as e:  # a message, not a traceback
        raise SystemExit(f"omnibench index: {e}") from None
    out = (
        export_r1omni(clips, args.out, style=args.style)
        if args.format == "r1omni"
        else write_manifest(clips, args.out)
    )
    for report in reports:
        print(report.summary())
    print(f"wrote {out} ({len(clips)} clips; splits {split_counts(clips)})")
    return 0
