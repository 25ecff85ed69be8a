"""``omnibench attribute``: attribute one checkpoint on one manifest split, from the command line.

The command decodes the clips with the settings the checkpoint was trained on
(:func:`omnibench.data.media.decode_config_for`; ``--num-frames`` / ``--frame-size`` / ... override
them, with a logged warning on a mismatch), prints the effective settings and writes them into
``attribution_summary.json`` next to ``attribution.jsonl``; the summary's validation and
faithfulness go into the run folder's ``metrics.json`` through the one merge
(:func:`omnibench.run.merge_metrics`). The model is loaded where ``--device`` / ``--dtype`` /
``--attn-implementation`` say (CUDA in bfloat16 when present, else the CPU in float32) and scored
in batches of ``--batch-size`` in that dtype.
"""

from __future__ import annotations

import argparse
import time

from omnibench.attribution.perceptual import perceptual_score
from omnibench.attribution.result import dominant_agreement
from omnibench.attribution.shapley import VALUES
from omnibench.attribution.value import (
    POSITIONS,
    STRATEGIES,
    AttributionConfig,
    attribute,
    attribute_generate,
)
from omnibench.data.media import MediaStore, add_decode_args, decode_config_for, decode_overrides
from omnibench.io import read_jsonl, write_json
from omnibench.model.loading import add_model_args, describe_load, model_load_kwargs

__all__ = ["add_attribute_args", "cli_attribute"]


def add_attribute_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench attribute`` (decode flags from :func:`omnibench.data.media.add_decode_args`)."""
    parser.add_argument("--model", required=True, help="checkpoint folder to attribute")
    parser.add_argument("--manifest", required=True, help="manifest JSONL")
    parser.add_argument("--split", required=True, help="split (e.g. test_id)")
    parser.add_argument("--strategy", default="drop", choices=STRATEGIES, help="how a modality is removed")
    parser.add_argument("--target", default="prediction", choices=["prediction", "gold"], help="label attributed")
    parser.add_argument("--value", default="prob", choices=VALUES, help="prob (among labels) | logprob")
    parser.add_argument("--position", default="auto", choices=POSITIONS,
                        help="where <answer>label</answer> is scored (auto: regenerate for a reasoning model, "
                             "else prompt)")
    parser.add_argument("--players", default="video,audio", help="video,audio or video,audio,text")
    parser.add_argument("--out", default=None, help="output folder (default: the run folder holding the model)")
    parser.add_argument("--predictions", default=None,
                        help="predictions JSONL from `omnibench eval` (answers + reasoning; skips generation)")
    parser.add_argument("--no-generate", action="store_true",
                        help="do not generate reasoning (no faithfulness; target = argmax of label scores)")
    parser.add_argument("--cross-check", type=int, default=0,
                        help="also run the generation-based variant on the first N clips and report agreement")
    parser.add_argument("--perceptual", type=int, default=0, help="perceptual score with N permutations (0 = skip)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--cache", default=None, help="decode cache folder")
    parser.add_argument("--dataset", default=None, help="label set (data card name; default: the card of the clips' dataset, else the model's labels)")
    add_decode_args(parser)
    add_model_args(parser)
    return parser


def _read_completions(path: str, clips) -> list[str]:
    recs = {r["id"]: r for r in read_jsonl(path)}
    lost = [c.id for c in clips if c.id not in recs]
    if lost:
        raise SystemExit(f"{path}: no prediction for {len(lost)} clip(s), e.g. {lost[:3]}; run `omnibench eval` "
                         "on the same manifest split, or drop --predictions")
    return [recs[c.id].get("completion") or "" for c in clips]


def cli_attribute(args: argparse.Namespace) -> int:
    """``omnibench attribute``: writes ``attribution.jsonl``, ``attribution_summary.json`` (with the
    effective decode settings) and merges the summary into ``metrics.json`` under "attribution".
    Returns the exit status (0)."""
    from pathlib import Path

    from omnibench.data.manifest import read_manifest
    from omnibench.evaluate import default_run_dir, model_labels
    from omnibench.labels import labels_for
    from omnibench.model import generate, load_model
    from omnibench.model.inputs import ALL, DEFAULT_PROMPT
    from omnibench.run import merge_metrics

    model, processor = load_model(args.model, **model_load_kwargs(args))
    model.eval()
    print(f"model: {describe_load(model)}", flush=True)
    clips = read_manifest(args.manifest, split=args.split)
    if not clips:
        raise SystemExit(f"{args.manifest}: no clips in split {args.split!r}")
    if args.limit:
        clips = clips[: args.limit]
    # the split's own label set (its dataset's card), as `omnibench eval` and 05_attribution score it
    labels = labels_for(clips, default=model_labels(model), dataset=getattr(args, "dataset", None))
    out = Path(args.out) if args.out else default_run_dir(args.model)
    decode = decode_config_for(model, decode_overrides(args))
    print(f"decode: {decode.describe()}", flush=True)
    media = MediaStore(clips, decode, cache=args.cache).decode(clips)
    position = "prompt" if (args.no_generate and args.position == "auto") else args.position
    cfg = AttributionConfig(players=tuple(args.players.split(",")), strategy=args.strategy, value=args.value,
                            target=args.target, position=position, batch_size=args.batch_size, seed=args.seed,
                            max_new_tokens=args.max_new_tokens)
    completions = None
    t0 = time.perf_counter()
    if args.predictions:
        completions = _read_completions(args.predictions, clips)
    elif not args.no_generate:
        completions = generate(model, processor, media, ALL, prompt=DEFAULT_PROMPT,
                               max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    t_gen = time.perf_counter() - t0
    res = attribute(model, processor, clips, media, labels=labels, config=cfg, completions=completions, progress=True)
    path = res.save(out / "attribution.jsonl")
    summary = res.summary()
    summary["method"]["generate_seconds"] = t_gen
    summary["decode"] = decode.to_dict()
    if args.cross_check:
        k = min(args.cross_check, len(clips))
        t1 = time.perf_counter()
        score_sub = attribute(model, processor, clips[:k], media[:k], labels=labels, config=cfg,
                              completions=completions[:k] if completions is not None else None,
                              predictions=res.prediction[:k])
        t_score = time.perf_counter() - t1
        gen = attribute_generate(model, processor, clips[:k], media[:k], labels=labels, config=cfg,
                                 targets=res.target[:k], max_new_tokens=args.max_new_tokens)
        agr = dominant_agreement(score_sub, gen)
        summary["cross_check"] = {**agr, "n_clips": k, "score_seconds": t_score, "generate_seconds": gen.seconds,
                                  "time_ratio": gen.seconds / max(t_score, 1e-9)}
    if args.perceptual:
        pr = perceptual_score(model, processor, clips, media, labels=labels, n_perm=args.perceptual, seed=args.seed,
                              batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                              mode="score" if res.position == "prompt" else "generate")
        summary["perceptual"] = pr.summary().to_dict(orient="records")
    write_json(out / "attribution_summary.json", summary)
    headline = {"validation": summary["validation"]}
    if "faithfulness" in summary:
        headline["faithfulness"] = summary["faithfulness"]
    merge_metrics(out / "metrics.json", {"attribution": headline})
    v = summary["validation"]
    print(f"attribution ({cfg.strategy}, {cfg.value}, target={cfg.target}, position={res.position}): {len(res)} clips")
    for mod, d in v.items():
        print(f"  validation {mod}: n={d['n']} share_ok={d['share_ok']:.3f}")
    if "faithfulness" in summary:
        print(f"  faithfulness: agreement={summary['faithfulness']['agreement']:.3f} "
              f"correlation={summary['faithfulness']['correlation']:.3f}")
    if "cross_check" in summary:
        c = summary["cross_check"]
        print(f"  scoring vs generation: dominant-modality agreement={c['agreement']:.3f} on {c['n']} clips "
              f"without a tie; generation-based took {c['time_ratio']:.2f}x the scoring time")
    print(f"written: {path}, {out / 'attribution_summary.json'}, {out / 'metrics.json'}")
    return 0
