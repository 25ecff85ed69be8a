"""``omnibench eval``: one checkpoint (or a predictions file made elsewhere) on one split of a manifest.

The model is loaded where ``--device`` / ``--dtype`` / ``--attn-implementation`` say
(:func:`omnibench.model.loading.add_model_args`: CUDA in bfloat16 when present, else the CPU in
float32) and evaluated in batches of ``--batch-size`` in that dtype.

Writes ``predictions/<checkpoint>__<split>__<modalities>.jsonl`` and merges the cell into
``metrics.json`` (by default in the run folder that holds the checkpoint:
:func:`omnibench.run.locate_checkpoint`), prints the table row and the counts of unparseable,
out-of-set and alias-mapped answers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from omnibench.data.media import add_decode_args, decode_overrides
from omnibench.evaluate.metrics import eval_table, format_table, update_metrics_json
from omnibench.evaluate.result import read_external_predictions
from omnibench.evaluate.runner import EvalConfig, eval_labels, evaluate_split, model_labels
from omnibench.model.loading import add_model_args, describe_load, model_load_kwargs
from omnibench.run import locate_checkpoint, predictions_name


def add_eval_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench eval``."""
    parser.add_argument("--model", default=None, help="checkpoint folder (save_pretrained) to evaluate")
    parser.add_argument("--predictions", default=None, metavar="FILE",
                        help="score a JSONL/CSV of clip ids with completions or bare labels made elsewhere instead "
                             "of running a model (columns: id + completion|output|response or prediction|label|answer)")
    parser.add_argument("--manifest", required=True, help="manifest JSONL")
    parser.add_argument("--split", required=True, help="split to evaluate (e.g. test_id, test_actors, test_ood; dfew/test for a merged manifest)")
    parser.add_argument("--modalities", default="video,audio", help="video,audio | video | audio | none")
    parser.add_argument("--out", default=None, help="output folder (predictions + metrics.json); default: the model folder's run")
    parser.add_argument("--checkpoint-name", default=None,
                        help="row name in metrics.json (default: the checkpoint's name, e.g. grpo, or the predictions file's stem)")
    parser.add_argument("--mode", default="generate", choices=["generate", "score"], help="generate | score (fast argmax of label scores)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="tokens generated per clip (64 fits the tiny model; 512 for a real model's reasoning)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N clips")
    parser.add_argument("--cache", default=None, help="decode cache folder")
    parser.add_argument("--dataset", default=None,
                        help="label set to score against (data card name; default: the card of the clips' dataset, "
                             "else the model's labels)")
    add_decode_args(parser)
    add_model_args(parser)
    return parser


def default_run_dir(model_path: str | os.PathLike) -> Path:
    """Where outputs go without ``--out``: the run folder holding the checkpoint
    (``runs/NAME/checkpoints/grpo/model`` -> ``runs/NAME``; see :func:`omnibench.run.locate_checkpoint`)."""
    return locate_checkpoint(model_path)[0]


def cli_eval(args: argparse.Namespace) -> int:
    """``omnibench eval``: evaluate one checkpoint (or score ``--predictions``) on one split; writes the
    predictions and merges the cell into metrics.json. Returns the exit status."""
    from omnibench.data.manifest import read_manifest

    if bool(args.model) == bool(args.predictions):
        raise SystemExit("omnibench eval: give --model CHECKPOINT (run it) or --predictions FILE (score it), not both")
    clips = read_manifest(args.manifest, split=args.split)
    if not clips:
        raise SystemExit(f"{args.manifest}: no clips in split {args.split!r}")
    split_ids = {c.id for c in clips}
    if args.limit:
        clips = clips[: args.limit]
    if args.predictions:
        if args.modalities != "video,audio" or args.mode != "generate":
            raise SystemExit("omnibench eval --predictions scores the file as it is: --modalities and --mode apply "
                             "only with --model")
        res = read_external_predictions(args.predictions, clips, labels=eval_labels(clips, dataset=args.dataset),
                                        checkpoint=args.checkpoint_name, split=args.split, n_boot=args.n_boot,
                                        seed=args.seed, split_ids=split_ids)
        out = Path(args.out) if args.out else Path(args.predictions).resolve().parent
        print(f"scored {args.predictions}: {res.extra['n_missing']} clip(s) of the split have no prediction "
              f"(counted as unparseable, wrong); {res.extra['n_unknown_ids']} id(s) not in the split (skipped)")
    else:
        res, out = _run_model(args, clips)
    tag = res.modalities.replace(",", "+")
    pred_path = res.write_predictions(out / "predictions" / predictions_name(res.checkpoint, args.split, res.modalities))
    update_metrics_json(out / "metrics.json", eval_table([res]))
    m = res.metrics
    row = res.checkpoint + ("" if tag == "video+audio" else f"[{tag}]")
    print(format_table({"eval": {row: {args.split: res.summary()}}}))
    print(
        f"label set ({len(res.labels)}): {', '.join(res.labels)}\n"
        f"unparseable {m['n_unparseable']}, out-of-set answers {m['n_out_of_set']}, alias-mapped {m['n_alias']}, "
        f"gold outside the label set {m['n_gold_out_of_set']} (counted wrong)"
        + (f"; {res.seconds:.1f} s" if res.seconds == res.seconds else "")
    )
    print(f"predictions: {pred_path}\nmetrics: {out / 'metrics.json'}")
    return 0


def _run_model(args: argparse.Namespace, clips):
    """Load ``--model``, decode with its trained settings (CLI overrides on top) and evaluate."""
    from omnibench.data.media import DecodeCache, decode_config_for
    from omnibench.model import load_model

    model, processor = load_model(args.model, **model_load_kwargs(args))
    model.eval()
    print(f"model: {describe_load(model)}")
    run_dir, name = locate_checkpoint(args.model)
    out = Path(args.out) if args.out else run_dir
    decode = decode_config_for(model, decode_overrides(args))
    print(f"decode settings: {decode.describe()}")
    labels = eval_labels(clips, default=model_labels(model), dataset=args.dataset)
    cfg = EvalConfig(
        modalities=args.modalities, mode=args.mode, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, n_boot=args.n_boot, seed=args.seed,
    )
    res = evaluate_split(model, processor, clips, labels=labels, config=cfg, checkpoint=args.checkpoint_name or name,
                         split=args.split, decode_config=decode, cache=DecodeCache(args.cache) if args.cache else None,
                         progress=True)
    res.extra["decode"] = decode.to_dict()
    return res, out
