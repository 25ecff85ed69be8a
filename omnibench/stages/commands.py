"""``omnibench eval`` and ``omnibench attribute``: the evaluation and attribution stages from the command line.

Both commands build the stage's config from their flags and call the same function the notebook
calls (:func:`~omnibench.stages.evaluate_stage`, :func:`~omnibench.stages.attribution_stage`), so a
flag's default and help text are the config field's (:func:`~omnibench.stages.config.flag`) and the
run folder gets the same files and ``metrics.json`` sections from either. Outputs go to ``--out``, by
default the run folder holding the checkpoint (:func:`omnibench.run.locate_checkpoint`:
``runs/NAME/checkpoints/grpo/model`` -> ``runs/NAME``). The model is loaded where ``--device`` /
``--dtype`` / ``--attn-implementation`` say; ``--num-frames`` / ``--frame-size`` / ... override the
decode settings the checkpoint was trained with.

``omnibench eval --predictions FILE`` scores a JSONL/CSV of completions or labels made elsewhere by
the same rules, without a model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omnibench.run import RunFolder, locate_checkpoint
from omnibench.stages.attribution import AttributionStageConfig, attribution_stage
from omnibench.stages.config import MODEL_LOAD_FIELDS, flag
from omnibench.stages.evaluate import EvaluateStageConfig, evaluate_stage

__all__ = ["add_attribute_args", "add_eval_args", "cli_attribute", "cli_eval"]

E, A = EvaluateStageConfig, AttributionStageConfig


def _splits(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _common(parser: argparse.ArgumentParser, cls) -> None:
    """The flags both commands share (manifest, splits, out, limits, label set, decode, model placement)."""
    from omnibench.data.media import add_decode_args
    from omnibench.model.loading import add_model_args

    parser.add_argument("--manifest", required=True, help=flag(cls, "manifest")["help"])
    parser.add_argument("--split", required=True, type=_splits, dest="splits", metavar="SPLIT[,SPLIT...]",
                        help="split(s) to run on, comma-separated (e.g. test_id; dfew/test for a merged manifest)")
    parser.add_argument("--out", default=None,
                        help="output run folder (predictions/, metrics.json, ...); default: the run folder holding "
                             "the model")
    parser.add_argument("--batch-size", type=int, **flag(cls, "batch_size"))
    parser.add_argument("--max-new-tokens", type=int, **flag(cls, "max_new_tokens"))
    parser.add_argument("--n-boot", type=int, **flag(cls, "n_boot"))
    parser.add_argument("--seed", type=int, **flag(cls, "seed"))
    parser.add_argument("--limit", type=int, dest="max_clips", **flag(cls, "max_clips"))
    parser.add_argument("--dataset", **flag(cls, "dataset"))
    parser.add_argument("--on-error", choices=["skip", "error"], **flag(cls, "on_error"))
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_decode_args(parser)
    add_model_args(parser)


def _common_values(args: argparse.Namespace) -> dict:
    from omnibench.data.media import decode_overrides

    out = {k: getattr(args, k) for k in ("manifest", "splits", "batch_size", "max_new_tokens", "n_boot", "seed",
                                         "max_clips", "dataset", "on_error", "progress")}
    out.update({k: getattr(args, k) or "" for k in MODEL_LOAD_FIELDS})
    out["device"] = out["device"] or "auto"
    out["dtype"] = out["dtype"] or "auto"
    out["decode"] = decode_overrides(args)
    out["manifest"] = str(Path(args.manifest).resolve())
    return out


def _out(args: argparse.Namespace, model: str | None) -> RunFolder:
    if args.out:
        return RunFolder(args.out)
    if model is None:
        raise SystemExit("give --out FOLDER for the scored predictions")
    return RunFolder(locate_checkpoint(model)[0])


# ------------------------------------------------------------------------------------------ eval


def add_eval_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench eval``."""
    parser.add_argument("--model", default=None, help="checkpoint folder (save_pretrained) to evaluate")
    parser.add_argument("--predictions", default=None, metavar="FILE",
                        help="score a JSONL/CSV of clip ids with completions or bare labels made elsewhere instead "
                             "of running a model (columns: id + completion|output|response or prediction|label|answer)")
    parser.add_argument("--checkpoint-name", default=None,
                        help="row name in metrics.json (default: the checkpoint's name, e.g. grpo, or the predictions "
                             "file's stem)")
    parser.add_argument("--modalities", default="video,audio", help="video,audio | video | audio | none")
    parser.add_argument("--mode", choices=["generate", "score"], **flag(E, "mode"))
    _common(parser, E)
    return parser


def cli_eval(args: argparse.Namespace) -> int:
    """``omnibench eval``: the evaluation stage on one checkpoint, or ``--predictions`` scored."""
    if bool(args.model) == bool(args.predictions):
        raise SystemExit("omnibench eval: give --model CHECKPOINT (run it) or --predictions FILE (score it), not both")
    if args.predictions:
        return _score_predictions(args)
    name = args.checkpoint_name or locate_checkpoint(args.model)[1]
    values = _common_values(args)
    full = set(args.modalities.split(",")) == {"video", "audio"}
    cfg = E(checkpoints=[f"{name}:{Path(args.model).resolve()}"], mode=args.mode, full_input=full,
            single_modality=[] if full else [args.modalities], single_modality_checkpoints=[] if full else [name],
            **values)
    run = _out(args, args.model)
    result = evaluate_stage(run, cfg)
    for res in result.results + result.single:
        m = res.metrics
        print(f"{res.checkpoint} {res.split} [{res.modalities}]: label set ({len(res.labels)}) {', '.join(res.labels)}; "
              f"unparseable {m['n_unparseable']}, out-of-set answers {m['n_out_of_set']}, alias-mapped {m['n_alias']}, "
              f"gold outside the label set {m['n_gold_out_of_set']} (counted wrong)")
    print(f"predictions: {run.predictions}\nmetrics: {run.metrics_path}")
    return 0


def _score_predictions(args: argparse.Namespace) -> int:
    from omnibench.data.manifest import read_manifest
    from omnibench.evaluate.metrics import eval_table, format_table
    from omnibench.evaluate.result import read_external_predictions
    from omnibench.labels import labels_for

    if args.modalities != "video,audio" or args.mode != "generate":
        raise SystemExit("omnibench eval --predictions scores the file as it is: --modalities and --mode apply "
                         "only with --model")
    run = RunFolder(args.out) if args.out else RunFolder(Path(args.predictions).resolve().parent)
    for split in args.splits:
        clips = read_manifest(args.manifest, split=split)
        if not clips:
            raise SystemExit(f"{args.manifest}: no clips in split {split!r}")
        split_ids = {c.id for c in clips}
        clips = clips[: args.max_clips or None]
        res = read_external_predictions(args.predictions, clips, labels=labels_for(clips, dataset=args.dataset or None),
                                        checkpoint=args.checkpoint_name, split=split, n_boot=args.n_boot,
                                        seed=args.seed, split_ids=split_ids)
        print(f"scored {args.predictions}: {res.extra['n_missing']} clip(s) of the split have no prediction "
              f"(counted as unparseable, wrong); {res.extra['n_unknown_ids']} id(s) not in the split (skipped)")
        res.write_predictions(run.predictions_path(res.checkpoint, split, res.modalities))
        table = eval_table([res])
        run.update_metrics("eval", table["eval"])
        print(format_table(table))
    print(f"predictions: {run.predictions}\nmetrics: {run.metrics_path}")
    return 0


# ------------------------------------------------------------------------------------- attribute


def add_attribute_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench attribute``."""
    from omnibench.attribution import POSITIONS, STRATEGIES, VALUES

    parser.add_argument("--model", required=True, help="checkpoint folder to attribute")
    parser.add_argument("--strategy", choices=STRATEGIES, **flag(A, "strategy"))
    parser.add_argument("--target", choices=["prediction", "gold"], **flag(A, "target"))
    parser.add_argument("--value", choices=VALUES, **flag(A, "value"))
    parser.add_argument("--position", choices=POSITIONS, **flag(A, "position"))
    parser.add_argument("--players", type=_splits, **flag(A, "players"))
    parser.add_argument("--predictions", **flag(A, "predictions"))
    parser.add_argument("--no-generate", dest="generate", action="store_false", help=flag(A, "generate")["help"])
    parser.add_argument("--cross-check", type=int, **flag(A, "cross_check"))
    parser.add_argument("--perceptual", type=int, dest="n_perm", **flag(A, "n_perm"))
    _common(parser, A)
    return parser


def cli_attribute(args: argparse.Namespace) -> int:
    """``omnibench attribute``: the attribution stage on one checkpoint."""
    cfg = A(checkpoint=str(Path(args.model).resolve()), strategy=args.strategy, target=args.target, value=args.value,
            position=args.position, players=list(args.players), predictions=args.predictions or "",
            generate=args.generate, cross_check=args.cross_check, n_perm=args.n_perm, **_common_values(args))
    run = _out(args, args.model)
    attribution_stage(run, cfg)
    print(f"written: {run.attribution}, {run.metrics_path}", file=sys.stdout)
    return 0
