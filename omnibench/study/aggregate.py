"""Aggregating a study's run folders into ``study.json`` (cells as means with CIs over seeds, paired
comparisons) and presenting it (text table, ``study.html``)."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from omnibench.answers import resolve_gold
from omnibench.io import atomic_write_text, read_jsonl, write_json
from omnibench.run import CHECKPOINTS, RunFolder
from omnibench.stats import bootstrap_seeds_clips, mean_ci_over_seeds, paired_bootstrap_seeds_clips
from omnibench.study.units import COMPARISONS, SPLIT_ORDER, StudyError, Unit

# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


def _discover_units(study_dir: Path) -> list[Unit]:
    import re

    units = []
    for p in sorted(study_dir.iterdir()):
        m = re.fullmatch(r"(?:seed(\d+))?_?(?:fold(\w+))?", p.name)
        if p.is_dir() and m and (m.group(1) or m.group(2)) and (p / "metrics.json").is_file():
            f = m.group(2)
            units.append(Unit(int(m.group(1)) if m.group(1) else None,
                              int(f) if f is not None and f.isdigit() else f))
    return sorted(units, key=lambda u: (u.seed if u.seed is not None else -1, str(u.fold)))


def _ordered(splits: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(splits))
    return [s for s in SPLIT_ORDER if s in seen] + [s for s in seen if s not in SPLIT_ORDER]


def clip_correctness(run: RunFolder, checkpoint: str, split: str) -> dict[str, tuple] | None:
    """id -> (gold, correct) from the full-input predictions file (None when absent); unlabelled clips
    are left out, as the evaluation leaves them out. A prediction is correct by the evaluation's rule:
    its resolved label is the gold label (``prediction`` is already resolved against the split's labels)."""
    path = run.predictions_path(checkpoint, split)
    if not path.is_file():
        return None
    out = {}
    for r in read_jsonl(path):
        gold = resolve_gold(r["gold"], r.get("labels"))
        if gold.status == "missing":
            continue
        out[r["id"]] = (gold.label, gold.status != "out_of_set" and r.get("prediction") == gold.label)
    return out


def aggregate_study(
    study_dir: str | os.PathLike,
    units: Sequence[Unit] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    info: Mapping | None = None,
) -> dict:
    """Read each unit's run folder and write ``study.json`` and ``study.html`` in ``study_dir``.

    Cells come from each unit's ``metrics.json`` ``eval`` table (the figures its own report shows); the
    bootstrap CIs and the paired comparisons from its predictions files (``predictions/<ck>__<split>__
    video+audio.jsonl``), a clip counted correct when its resolved prediction equals its gold label (the
    evaluation's rule). A cell or comparison missing in some unit is computed over the units that have
    it and the missing ones are listed under ``missing``. Returns the study dict."""
    study_dir = Path(study_dir)
    units = list(units) if units is not None else _discover_units(study_dir)
    if not units:
        raise StudyError(f"{study_dir}: no unit folders (seed<k>/, fold<f>/) with a metrics.json to aggregate")
    runs = {u.name: RunFolder(study_dir / u.name, create=False) for u in units}
    evals = {n: (r.read_metrics().get("eval") or {}) for n, r in runs.items()}
    ck_seen = list(dict.fromkeys(ck for ev in evals.values() for ck in ev))
    checkpoints = [c for c in CHECKPOINTS if c in ck_seen] + [c for c in ck_seen if c not in CHECKPOINTS]
    splits = _ordered([sp for ev in evals.values() for cells in ev.values() for sp in cells])
    missing: list[str] = []
    preds: dict[tuple[str, str, str], dict | None] = {}
    for n, r in runs.items():
        for ck in checkpoints:
            for sp in splits:
                preds[(n, ck, sp)] = clip_correctness(r, ck, sp) if sp in evals[n].get(ck, {}) else None

    def codes_for(sp: str) -> dict[str, int]:
        golds = sorted({g for (n, _, s), p in preds.items() if s == sp and p for g, _ in p.values()})
        from omnibench.labels import DFEW7

        order = [g for g in DFEW7 if g in golds] + [g for g in golds if g not in DFEW7]
        return {g: i for i, g in enumerate(order)}

    cells: dict = {}
    consistency: list[str] = []
    for ck in checkpoints:
        for sp in splits:
            have = [n for n in runs if sp in evals[n].get(ck, {})]
            missing += [f"{n}: eval {ck}/{sp}" for n in runs if n not in have]
            if not have:
                continue
            cell = {k: mean_ci_over_seeds([evals[n][ck][sp].get(k) for n in have]) for k in ("war", "uar")}
            cell["units"] = have
            cell["n_clips"] = [evals[n][ck][sp].get("n") for n in have]
            codes = codes_for(sp)
            groups = []
            for n in have:
                p = preds[(n, ck, sp)]
                if p is None:
                    missing.append(f"{n}: predictions {ck}/{sp}")
                    continue
                g = np.array([codes[v[0]] for v in p.values()])
                c = np.array([v[1] for v in p.values()])
                groups.append((g, c))
                war = float(c.mean())
                if abs(war - float(evals[n][ck][sp]["war"])) > 1e-9:
                    consistency.append(f"{n}: {ck}/{sp} WAR {evals[n][ck][sp]['war']:.4f} in metrics.json, "
                                       f"{war:.4f} from its predictions file")
            if groups and len(groups) == len(have):
                b = bootstrap_seeds_clips(groups, len(codes), n_boot=n_boot, seed=seed)
                cell["war_boot_ci"], cell["uar_boot_ci"] = b["war"]["ci"], b["uar"]["ci"]
            cells.setdefault(ck, {})[sp] = cell

    comps: dict = {}
    for a, b in comparisons:
        key = f"{a} - {b}"
        for sp in splits:
            groups, used = [], []
            for n in runs:
                pa, pb = preds.get((n, a, sp)), preds.get((n, b, sp))
                if pa is None or pb is None:
                    continue
                if set(pa) != set(pb):
                    raise StudyError(f"{study_dir / n}: {a} and {b} predictions on {sp} cover different clips "
                                     f"({len(set(pa) ^ set(pb))} differ); re-run 04_evaluate for both")
                codes = codes_for(sp)
                ids = list(pa)
                groups.append((np.array([codes[pa[i][0]] for i in ids]), np.array([pa[i][1] for i in ids]),
                               np.array([pb[i][1] for i in ids])))
                used.append(n)
            if not groups:
                continue
            res = paired_bootstrap_seeds_clips(groups, len(codes_for(sp)), n_boot=n_boot, seed=seed)
            res["units"] = used
            comps.setdefault(key, {})[sp] = res

    towers: dict = {}  # the tiny base model's tower read-outs (held-out linear probes), per unit
    for n, r in runs.items():
        last = ((r.read_metrics().get("training") or {}).get("base") or {}).get("towers") or {}
        if any(f"{m}_accuracy" in last for m in ("video", "audio")):
            towers[n] = {m: last.get(f"{m}_accuracy") for m in ("video", "audio")}

    study = {
        "name": study_dir.name,
        "units": [{"name": u.name, "seed": u.seed, "fold": u.fold, "path": str(runs[u.name].path)} for u in units],
        "n_units": len(units),
        "checkpoints": checkpoints,
        "splits": splits,
        "cells": cells,
        "comparisons": comps,
        "towers": towers,
        "method": {
            "cell": "mean over units of each unit's metrics.json figure; ci: Student-t 95% over units "
                    "(n - 1 df); *_boot_ci: two-level percentile bootstrap, units then clips",
            "comparison": "A - B per unit on the same clips; mean over units; ci: paired two-level "
                          "percentile bootstrap (units with replacement, then each unit's clips, the same "
                          "draw for A and B); frac_positive: share of units with A - B > 0",
            "n_boot": n_boot,
            "bootstrap_seed": seed,
        },
        "missing": missing,
        "consistency": consistency,
        **dict(info or {}),
    }
    write_json(study_dir / "study.json", study)
    atomic_write_text(study_dir / "study.html", render_study_html(study))
    return study


# --------------------------------------------------------------------------------------------------
# Presenting
# --------------------------------------------------------------------------------------------------


def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _pm(cell: Mapping, key: str = "ci") -> str:
    ci = cell.get(key) or [None, None]
    return f"{_pct(cell.get('mean'))} [{_pct(ci[0])}, {_pct(ci[1])}]"


def format_study(study: Mapping) -> str:
    """The study's WAR table and comparisons as plain text (percent, 95% CIs over units)."""
    lines = [f"study {study.get('name')}: {study.get('n_units')} unit(s), WAR % mean [95% CI over units]"]
    splits = study.get("splits", [])
    lines.append(f"{'checkpoint':<12}" + "".join(f"{s:>26}" for s in splits))
    for ck, row in study.get("cells", {}).items():
        lines.append(f"{ck:<12}" + "".join(f"{_pm(row[s]['war']) if s in row else '–':>26}" for s in splits))
    for key, row in study.get("comparisons", {}).items():
        lines.append(f"{key:<24}" + "  ".join(
            f"{s}: {_pm(row[s]['war'])} (+ in {row[s]['war']['frac_positive']:.0%})" for s in splits if s in row))
    if study.get("towers"):
        lines.append("tower read-outs (video / audio): " + ", ".join(
            f"{n} {_pct(t.get('video'))} / {_pct(t.get('audio'))}" for n, t in study["towers"].items()))
    return "\n".join(lines)


_STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
          "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
          "td:first-child{text-align:left}.pos{color:#060}.neg{color:#a00}</style></head><body>")


def render_study_html(study: Mapping) -> str:
    """``study.html``: the cells (WAR, UAR) and the paired comparisons as tables; stands alone."""
    e = html.escape
    splits = study.get("splits", [])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>study {e(str(study.get('name')))}</title>",
             _STYLE,
             f"<h1>Study {e(str(study.get('name')))}</h1>",
             f"<p>{study.get('n_units')} unit(s): " + ", ".join(e(u["name"]) for u in study.get("units", []))
             + (f"; data pinned by {e(str(study['data_pinned']))}" if study.get("data_pinned") else "")
             + ". Figures in %, mean over units [95% CI].</p>"]
    for metric in ("war", "uar"):
        parts.append(f"<h2>{metric.upper()}</h2><table><tr><th>checkpoint</th>"
                     + "".join(f"<th>{e(s)}<br>mean [t CI]</th><th>{e(s)}<br>[bootstrap CI]</th><th>per unit</th>"
                               for s in splits) + "</tr>")
        for ck, row in study.get("cells", {}).items():
            tds = []
            for s in splits:
                c = row.get(s)
                if c is None:
                    tds.append("<td>–</td><td>–</td><td>–</td>")
                    continue
                boot = c.get(f"{metric}_boot_ci") or [None, None]
                tds.append(f"<td>{_pm(c[metric])}</td><td>[{_pct(boot[0])}, {_pct(boot[1])}]</td>"
                           f"<td>{' / '.join(_pct(v) for v in c[metric]['values'])}</td>")
            parts.append(f"<tr><td>{e(ck)}</td>{''.join(tds)}</tr>")
        parts.append("</table>")
    parts.append("<h2>Paired comparisons (A − B, same clips)</h2><table><tr><th>comparison</th><th>split</th>"
                 "<th>WAR diff [paired bootstrap CI]</th><th>units with diff &gt; 0</th><th>per unit</th>"
                 "<th>UAR diff [CI]</th></tr>")
    for key, row in study.get("comparisons", {}).items():
        for s in splits:
            if s not in row:
                continue
            w, u = row[s]["war"], row[s]["uar"]
            cls = "pos" if (w["ci"][0] or 0) > 0 else ("neg" if (w["ci"][1] or 0) < 0 else "")
            parts.append(f"<tr><td>{e(key)}</td><td>{e(s)}</td><td class='{cls}'>{_pm(w)}</td>"
                         f"<td>{w['frac_positive']:.0%}</td><td>{' / '.join(_pct(v) for v in w['per_seed'])}</td>"
                         f"<td>{_pm(u)}</td></tr>")
    parts.append("</table>")
    if study.get("towers"):
        parts.append("<h2>Tower read-outs</h2><p>The tiny base model's held-out linear read-outs of the face's and "
                     "the voice's own emotion after perception pre-training (%).</p><table><tr><th>unit</th>"
                     "<th>video</th><th>audio</th></tr>" + "".join(
                         f"<tr><td>{e(n)}</td><td>{_pct(t.get('video'))}</td><td>{_pct(t.get('audio'))}</td></tr>"
                         for n, t in study["towers"].items()) + "</table>")
    m = study.get("method", {})
    parts.append(f"<h2>Method</h2><p>{e(str(m.get('cell', '')))}.</p><p>{e(str(m.get('comparison', '')))}; "
                 f"{m.get('n_boot')} resamples, seed {m.get('bootstrap_seed')}.</p>")
    for title, key in (("Missing", "missing"), ("Consistency warnings", "consistency")):
        if study.get(key):
            parts.append(f"<h2>{title}</h2><ul>" + "".join(f"<li>{e(str(x))}</li>" for x in study[key]) + "</ul>")
    if study.get("failed"):
        parts.append("<h2>Failed units</h2><ul>" + "".join(
            f"<li>{e(k)}: {e(str(v))}</li>" for k, v in study["failed"].items()) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
