"""The run's summary page, ``runs/<name>/report.html``, and the text table printed at the end of a run.

The page reads only the run folder: ``metrics.json`` (the R1-Omni-shaped WAR/UAR table with CIs, one
column group per evaluated split, each marked in or out of distribution with its dataset, label set and
fold from the ``splits`` section, the 7-class subset figures of ``eval_subset``,
single-modality evaluation, the attribution validation and faithfulness summary, training summary,
timing), ``skipped.jsonl`` (clips left out because their media do not decode, counted beside each
split's n), ``state.json`` (stage status), ``figures/*.png`` (key figures embedded as base64 so the page
stands alone; the rest linked) and the executed notebooks, which it renders to HTML with nbconvert
and links.

It sits above :mod:`omnibench.run` (the layout, the stages and the checkpoint names it reads) and
below the pipeline runner, which calls it at the end of a run; ``omnibench report`` lives here.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from omnibench.io import atomic_write_text
from omnibench.run import CHECKPOINTS, STAGES, RunFolder

CHECKPOINT_TITLES = {
    "base": "base model",
    "cold_start": "cold-start SFT (explained)",
    "label_sft": "label-only SFT",
    "grpo": "cold-start SFT + GRPO",
}
SPLITS = ("test_id", "test_actors", "test_ood", "test_draw")
SPLIT_TITLES = {"test_id": "in-distribution (test_id)", "test_actors": "unseen actors (test_actors)",
                "test_ood": "out-of-distribution (test_ood)", "test_draw": "a new draw (test_draw)"}

#: Figures shown first (embedded), by file stem; any other figure follows, linked.
KEY_FIGURES = (
    "evaluate_table",
    "evaluate_confusion_grpo",
    "evaluate_single_modality",
    "attribution_shares_by_condition",
    "attribution_shares_by_class",
    "attribution_validation",
    "attribution_perceptual_score",
    "attribution_faithfulness",
    "attribution_examples",
    "grpo_rewards",
    "cold_start_loss",
)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x))


def _pct(x) -> str:
    return f"{100 * float(x):.1f}" if _num(x) else "-"


def _pctu(x) -> str:
    """Percent with its unit, or '-'."""
    return f"{_pct(x)}%" if _num(x) else "-"


def _ci(ci) -> str:
    if not ci or len(ci) != 2 or not (_num(ci[0]) and _num(ci[1])):
        return ""
    return f"[{100 * float(ci[0]):.1f}, {100 * float(ci[1]):.1f}]"


def table_rows(metrics: Mapping) -> list[dict]:
    """One row per checkpoint present in ``metrics['eval']`` (table order first, then any other)."""
    ev = metrics.get("eval") or {}
    names = [c for c in CHECKPOINTS if c in ev] + [c for c in ev if c not in CHECKPOINTS]
    rows = []
    for c in names:
        cells = ev.get(c) or {}
        if not isinstance(cells, Mapping):
            continue
        rows.append({"checkpoint": c, **{s: cells.get(s) for s in _splits(metrics)}})
    return rows


def _splits(metrics: Mapping) -> list[str]:
    ev = metrics.get("eval") or {}
    seen = [s for s in SPLITS]
    for cells in ev.values():
        if isinstance(cells, Mapping):
            seen += [s for s in cells if s not in seen and isinstance(cells[s], Mapping) and "war" in cells[s]]
    return [s for s in seen if any(isinstance(c, Mapping) and s in c for c in ev.values())]


def split_title(split: str, info: Mapping | None = None) -> str:
    """A column group's title: SynthEmo's split titles, else ``dfew/test · fold 1 · 7 labels · in-distribution``."""
    if not info:
        return SPLIT_TITLES.get(split, split)
    if split in SPLIT_TITLES and info.get("dataset") == "synthemo":
        return SPLIT_TITLES[split]
    parts = [split]
    if info.get("fold") not in (None, [], ""):
        parts.append(f"fold {info['fold']}")
    if info.get("n_labels"):
        parts.append(f"{info['n_labels']} labels")
    dist = {"in": "in-distribution", "out": "out-of-distribution"}.get(info.get("distribution"))
    if dist:
        parts.append(dist)
    return " · ".join(parts)


def skipped_by_split(metrics: Mapping, skipped: Mapping | None = None) -> dict[str, int]:
    """Split -> clips evaluation left out because their media do not decode (``skipped.jsonl`` counts
    when given, else ``metrics["skipped"]["evaluate"]``)."""
    if skipped is not None:
        return dict(skipped.get("evaluate") or {})
    return dict((metrics.get("skipped") or {}).get("evaluate") or {})


def format_table(metrics: Mapping, skipped: Mapping | None = None) -> str:
    """Plain-text WAR/UAR table (percent, 95% CI) over checkpoints x splits, for the terminal; below it
    what each split is (dataset, fold, label set, in/out of distribution), clips skipped, and the
    7-class subset figures when ``metrics`` has them."""
    rows = table_rows(metrics)
    if not rows:
        return "(no evaluation results in metrics.json)"
    splits = _splits(metrics)
    header = ["checkpoint"] + [f"{s} {m}" for s in splits for m in ("WAR", "UAR")]
    body = []
    for r in rows:
        line = [r["checkpoint"]]
        for s in splits:
            cell = r.get(s) or {}
            for m in ("war", "uar"):
                line.append(f"{_pct(cell.get(m))} {_ci(cell.get(m + '_ci'))}".strip() if cell else "-")
        body.append(line)
    widths = [max(len(str(x[i])) for x in [header] + body) for i in range(len(header))]
    fmt = lambda xs: "  ".join(str(x).ljust(w) for x, w in zip(xs, widths))
    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
    lost = skipped_by_split(metrics, skipped)
    lines.append("WAR/UAR in %, [95% bootstrap CI]; n per split: "
                 + ", ".join(f"{s}={_first_n(rows, s)}" + (f" (+{lost[s]} skipped)" if lost.get(s) else "")
                             for s in splits))
    info = metrics.get("splits") or {}
    if any(s in info for s in splits):
        for s in splits:
            if s in info:
                lines.append(f"  {s}: {info[s].get('dataset')}, {split_title(s, info[s]).split(' · ', 1)[-1]}")
    if any(lost.get(s) for s in splits):
        lines.append("SKIPPED (media do not decode, not in n): "
                     + ", ".join(f"{s} {lost[s]}" for s in splits if lost.get(s)) + " (see skipped.jsonl)")
    sub = metrics.get("eval_subset") or {}
    if sub:
        lines.append("7-class subset (the cards' cross-dataset rule; out-of-subset clips counted apart): "
                     + "; ".join(f"{ck} {sp} WAR {_pct(c.get('war'))} UAR {_pct(c.get('uar'))} n {c.get('n')} "
                                 f"(+{c.get('n_outside_subset')} outside)"
                                 for ck, cells in sub.items() for sp, c in cells.items()))
    return "\n".join(lines)


def _first_n(rows, split):
    for r in rows:
        if r.get(split) and "n" in r[split]:
            return r[split]["n"]
    return "?"


def _html_eval_table(metrics: Mapping, key: str = "eval", titles: Mapping | None = None,
                     skipped: Mapping | None = None) -> str:
    """WAR/UAR table of ``metrics[key]`` ({row: {split: cell}}): one row per checkpoint (or
    checkpoint/modalities), one column group per split (titled with its dataset, fold, label set and
    in/out of distribution when ``metrics["splits"]`` says), WAR and UAR with their CIs, n (with the
    clips skipped because their media do not decode) and the unparseable rate."""
    sub = {key: metrics.get(key) or {}, }
    rows = table_rows({"eval": sub[key]})
    if not rows:
        return "<p class='missing'>No evaluation results yet (stage <code>evaluate</code>).</p>"
    titles = CHECKPOINT_TITLES if titles is None else titles
    splits = _splits({"eval": sub[key]})
    info = metrics.get("splits") or {}
    lost = skipped_by_split(metrics, skipped) if key in ("eval", "eval_subset") else {}
    if key == "eval_subset":  # the columns are scored on the 7-class subset, not the split's own label set
        info = {s: {**info[s], "n_labels": None} for s in info}
    head1 = "<tr><th rowspan=2>checkpoint</th>" + "".join(
        f"<th colspan=4>{html.escape(split_title(s, info.get(s)))}</th>" for s in splits) + "</tr>"
    head2 = "<tr>" + "<th>WAR</th><th>UAR</th><th>n</th><th>unparseable</th>" * len(splits) + "</tr>"
    body = []
    for r in rows:
        name = titles.get(r["checkpoint"], r["checkpoint"])
        tds = [f"<td class='name'>{html.escape(name)}</td>"]
        for s in splits:
            c = r.get(s)
            if not c:
                tds.append("<td colspan=4 class='missing'>-</td>")
                continue
            tds.append(f"<td><b>{_pct(c.get('war'))}</b> <small>{_ci(c.get('war_ci'))}</small></td>")
            tds.append(f"<td><b>{_pct(c.get('uar'))}</b> <small>{_ci(c.get('uar_ci'))}</small></td>")
            n = str(c.get("n", "-"))
            if c.get("n_outside_subset"):
                n += f" <small>(+{c['n_outside_subset']} outside)</small>"
            if lost.get(s):
                n += f" <small class='failed'>(+{lost[s]} skipped)</small>"
            tds.append(f"<td>{n}</td><td>{_pctu(c.get('unparseable'))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return "<table class='eval'>" + head1 + head2 + "".join(body) + "</table>"


def _html_skipped(run: RunFolder) -> str:
    """The clips each stage left out because their media do not decode (``skipped.jsonl``)."""
    rows = run.read_skipped()
    if not rows:
        return ""
    counts = run.skipped_counts()
    summary = "; ".join(f"{st}: " + ", ".join(f"{sp} {n}" for sp, n in d.items()) for st, d in counts.items())
    items = "".join(f"<tr><td class='name'>{html.escape(str(r.get('stage')))}</td><td class='name'>"
                    f"{html.escape(str(r.get('split')))}</td><td class='name'><code>{html.escape(str(r.get('id')))}"
                    f"</code></td><td class='name'><small>{html.escape(str(r.get('reason'))[:300])}</small></td></tr>"
                    for r in rows[:200])
    more = f"<p class='note'>... and {len(rows) - 200} more in skipped.jsonl</p>" if len(rows) > 200 else ""
    n_clips = len({r.get("id") for r in rows})
    return (f"<h3 class='failed'>Skipped clips: {n_clips} (media do not decode; {len(rows)} stage entries)</h3>"
            f"<p>Not counted in n: {html.escape(summary)}. Listed in <code>skipped.jsonl</code>.</p>"
            "<table><tr><th>stage</th><th>split</th><th>clip</th><th>reason</th></tr>" + items + "</table>" + more)


def _html_sources(metrics: Mapping) -> str:
    """The indexed sources of a real-data run (dataset, root, fold, clips) from ``metrics["data"]["sources"]``."""
    sources = (metrics.get("data") or {}).get("sources") or []
    if not sources:
        return ""
    rows = "".join(f"<tr><td class='name'>{html.escape(str(s.get('dataset')))}</td><td class='name'><code>"
                   f"{html.escape(str(s.get('root')))}</code></td><td>{html.escape(_fmt(s.get('fold')))}</td>"
                   f"<td>{html.escape(_fmt(s.get('indexed')))}</td><td>{_count(s.get('missing'))}</td></tr>"
                   for s in sources)
    return ("<h3>Data sources</h3><table><tr><th>dataset</th><th>root</th><th>fold</th><th>clips</th>"
            "<th>missing media</th></tr>" + rows + "</table>")


def _count(value) -> str:
    """A count for the table: the length of a list of ids, or the number itself."""
    if value is None:
        return "-"
    return str(len(value)) if isinstance(value, (list, tuple, set, dict)) else html.escape(str(value))


def _modality_title(row: str) -> str:
    ck, _, mods = row.partition("/")
    only = {"video": "video only (audio removed)", "audio": "audio only (video removed)", "none": "text only"}
    return f"{CHECKPOINT_TITLES.get(ck, ck)}: {only.get(mods, mods)}"


def _html_records(records, columns: Sequence[tuple[str, str]], title: str = "") -> str:
    """A list of dicts as a table; ``columns`` = (key, header); a key ``x`` with ``x_lo``/``x_hi``
    siblings is shown with its CI."""
    if not records:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    rows = []
    for r in records:
        tds = []
        for k, _ in columns:
            v = r.get(k)
            cell = html.escape(_fmt(v)) if not _num(v) else f"{float(v):.3g}" if isinstance(v, float) else str(v)
            if not _num(v) and v is None:
                cell = "-"
            lo, hi = r.get(f"{k}_lo"), r.get(f"{k}_hi")
            if _num(lo) and _num(hi):
                cell += f" <small>[{lo:.2f}, {hi:.2f}]</small>"
            tds.append(f"<td{' class=name' if not _num(v) else ''}>{cell}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return (f"<h3>{html.escape(title)}</h3>" if title else "") + f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v):
        return "[" + ", ".join(_fmt(float(x)) if isinstance(x, float) else str(x) for x in v) + "]"
    return str(v)


# --------------------------------------------------------------------------------------------------
# Notebooks and figures
# --------------------------------------------------------------------------------------------------


def render_notebook(ipynb: str | os.PathLike) -> Path:
    """Render an executed notebook to HTML next to it (nbconvert, lab template) and return the path."""
    import nbformat
    from nbconvert import HTMLExporter

    ipynb = Path(ipynb)
    nb = nbformat.read(ipynb, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(ipynb.with_suffix(".html"), body)


def _figure_stems(figures: Path) -> list[str]:
    stems = sorted(p.stem for p in figures.glob("*.png")) if figures.is_dir() else []
    key = [k for k in KEY_FIGURES if k in stems]
    return key + [s for s in stems if s not in key]


def _img_b64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1150px;color:#222;padding:0 1em}
h1{margin-bottom:.1em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3} td.name{text-align:left} small{color:#666} .missing{color:#999}
.note{color:#666;font-size:.9em} .ok{color:#1a7f37} .failed{color:#cf222e;font-weight:bold}
.figs{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;max-width:540px} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;text-align:center}
"""


def build_report(
    run_dir: str | os.PathLike,
    stages: Sequence | None = None,
    render_notebooks: bool = True,
    embed_all: bool = False,
) -> Path:
    """Write ``run_dir/report.html`` from the run folder and return its path.

    Args:
        run_dir: the run folder.
        stages: the pipeline's stages (default :data:`omnibench.run.STAGES`), for the status table
            and the notebook links.
        render_notebooks: render each executed notebook to HTML (nbconvert) and link it.
        embed_all: embed every figure (default: the key figures; the rest are linked).
    """
    run = RunFolder(run_dir, create=False)
    stages = STAGES if stages is None else stages
    metrics = run.read_metrics()
    state = run.read_state()
    params = run.read_params()

    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>omnibench run {html.escape(run.name)}</title>"
              f"<style>{_CSS}</style></head><body>")]
    parts.append(f"<h1>omnibench run <code>{html.escape(run.name)}</code></h1>")
    cfg = params.get("config", "")
    parts.append(f"<p class='sub'>built {_dt.datetime.now():%Y-%m-%d %H:%M} &middot; recipe "
                 f"<code>{html.escape(str(cfg))}</code>"
                 + (f" &middot; overrides <code>{html.escape(' '.join(params.get('overrides') or []))}</code>"
                    if params.get("overrides") else "") + "</p>")

    # stage status + notebook links
    timing = metrics.get("timing") or {}
    rows = []
    for st in stages:
        info = state.get(st.name)
        nb = run.notebooks / st.notebook
        link = "-"
        if nb.is_file():
            target = nb
            if render_notebooks:
                try:
                    target = render_notebook(nb)
                except Exception as e:  # noqa: BLE001 - a broken rendering must not lose the report
                    target = nb
                    info = {**(info or {}), "render_error": f"{type(e).__name__}: {e}"}
            link = f"<a href='{html.escape(os.path.relpath(target, run.path))}'>{html.escape(st.notebook)}</a>"
        if info is None:
            status = "<span class='missing'>not run</span>"
        elif info.get("status") == "ok":
            status = "<span class='ok'>ok</span>"
        else:
            status = f"<span class='failed'>{html.escape(str(info.get('status')))}</span> " \
                     f"<small>{html.escape(str(info.get('error', '')))}</small>"
        secs = timing.get(st.name, (info or {}).get("seconds"))
        rows.append(f"<tr><td class='name'>{html.escape(st.name)}</td><td class='name'>{link}</td>"
                    f"<td class='name'>{status}</td><td>{'-' if secs is None else f'{float(secs):.1f} s'}</td></tr>")
    total = timing.get("total")
    parts.append("<h2>Stages</h2><table><tr><th>stage</th><th>executed notebook</th><th>status</th><th>time</th></tr>"
                 + "".join(rows)
                 + (f"<tr><td class='name' colspan=3><b>total</b></td><td><b>{float(total):.1f} s</b></td></tr>"
                    if total is not None else "")
                 + "</table>")

    skipped = run.skipped_counts()
    parts.append("<h2>Emotion recognition (R1-Omni table)</h2>" + _html_eval_table(metrics, skipped=skipped)
                 + "<p class='note'>WAR = accuracy, UAR = mean per-class recall, in %, with seeded bootstrap 95% CIs; "
                 "unparseable answers count as wrong."
                 + (" Each split is scored against its own dataset's label set; in/out of distribution: whether "
                    "the run trained on that dataset." if metrics.get("splits") else "") + "</p>")
    if metrics.get("eval_subset"):
        parts.append("<h3>7-class subset (the data cards' cross-dataset rule)</h3>"
                     + _html_eval_table(metrics, key="eval_subset", skipped=skipped)
                     + "<p class='note'>Clips whose gold label is one of the DFEW seven, scored against those "
                     "seven; clips outside the subset (e.g. MAFW <i>contempt</i>, RAVDESS <i>calm</i>) are counted "
                     "apart (+N outside), and stay in the full-label figures above.</p>")
    parts.append(_html_skipped(run))
    parts.append(_html_sources(metrics))
    if metrics.get("eval_modalities"):
        titles = {k: _modality_title(k) for k in metrics["eval_modalities"]}
        parts.append("<h3>Single-modality evaluation</h3>"
                     + _html_eval_table(metrics, key="eval_modalities", titles=titles))

    att = metrics.get("attribution") or {}
    parts.append("<h2>Measured modality attribution</h2>")
    if att:
        meth = att.get("method") or {}
        if meth:
            parts.append(f"<p class='note'>Exact Shapley values over video and audio on <code>{html.escape(str(att.get('split', '')))}</code>"
                         f" ({meth.get('n', '?')} clips): removal <code>{html.escape(str(meth.get('strategy')))}</code>, "
                         f"value <code>{html.escape(str(meth.get('value')))}</code>, target "
                         f"<code>{html.escape(str(meth.get('target')))}</code>; shares undefined (no modality changes "
                         f"the value) for {meth.get('n_undefined', '?')} clips.</p>")
        val = att.get("validation") or {}
        if val:
            parts.append("<p>Validation on SynthEmo: among correctly classified, non-neutral clips whose emotion is "
                         "carried by one modality only, the fraction whose informative modality gets a Shapley share "
                         "above 0.5 (<code>share_ok</code>).</p><table><tr><th>condition</th><th>n</th><th>share_ok</th></tr>"
                         + "".join(f"<tr><td class='name'>{html.escape(str(k))}</td><td>{v.get('n', '-')}</td>"
                                   f"<td>{_pctu(v.get('share_ok'))}</td></tr>" for k, v in val.items()
                                   if isinstance(v, Mapping))
                         + "</table>")
        fa = att.get("faithfulness") or {}
        if fa:
            parts.append(f"<p>Faithfulness of the stated reasoning to the measured attribution: agreement on the "
                         f"dominant modality <b>{_pctu(fa.get('agreement'))}</b>, correlation of stated and measured "
                         f"video shares <b>{_fmt(fa.get('correlation'))}</b>.</p>")
        parts.append(_html_records(att.get("by_condition"), [("group", "condition"), ("n", "n"),
                                   ("share_video", "video share"), ("share_audio", "audio share"),
                                   ("accuracy", "accuracy")], "Mean Shapley shares per SynthEmo condition (95% CI)"))
        parts.append(_html_records(att.get("perceptual"), [("modality", "permuted"), ("group", "clips"),
                                   ("acc", "accuracy"), ("acc_perm", "permuted accuracy"), ("drop", "drop")],
                                   "Perceptual score"))
        by_split = att.get("by_split") or {}
        if by_split:
            recs = []
            for sp, d in by_split.items():
                v, f = d.get("validation") or {}, d.get("faithfulness") or {}
                recs.append({"split": sp, **{f"{m}_n": (v.get(m) or {}).get("n") for m in ("video", "audio")},
                             **{f"{m}_ok": (v.get(m) or {}).get("share_ok") for m in ("video", "audio")},
                             "agreement": f.get("agreement"), "correlation": f.get("correlation")})
            parts.append(_html_records(recs, [("split", "split"), ("video_n", "video n"), ("video_ok", "video share_ok"),
                                              ("audio_n", "audio n"), ("audio_ok", "audio share_ok"),
                                              ("agreement", "faithfulness agreement"), ("correlation", "correlation")],
                                       "Per split"))
        if att.get("human_reference"):
            from omnibench.attribution.human import reference_rows

            summary_rows, recognition_rows = reference_rows(att["human_reference"])
            parts.append("<h3>Against human perception</h3><p class='note'>Clips whose dataset records how people "
                         "recognised the emotion from the voice alone, the face alone and both (CREMA-D's votes, "
                         "RAVDESS's ratings): Pearson r between the measured video - audio share and the human "
                         "face - voice recognition rate (bootstrap 95% CI), and agreement on the dominant modality "
                         "where humans clearly favour one.</p>")
            parts.append(_html_records(summary_rows, [("split", "split"), ("n_with_human", "clips with rates"),
                                                      ("n_without_human", "without"), ("r", "r"), ("r_lo", "r low"),
                                                      ("r_hi", "r high"), ("agreement", "dominant agreement"),
                                                      ("n_clear", "clips humans favour clearly")], ""))
            parts.append(_html_records(recognition_rows, [("split", "split"), ("presentation", "presentation"),
                                                          ("human", "human recognition"), ("n", "n"),
                                                          ("model_input", "model input"), ("model", "model accuracy"),
                                                          ("published_cremad", "CREMA-D published")],
                                       "Recognition per presentation"))
    else:
        parts.append("<p class='missing'>No attribution results yet (stage <code>attribution</code>).</p>")

    if metrics.get("training"):
        recs = []
        for name, d in metrics["training"].items():
            if not isinstance(d, Mapping):
                continue
            r = {"run": name, "steps": d.get("steps"), "seconds": d.get("seconds")}
            for k, v in d.items():
                if isinstance(v, Mapping) and "first" in v:
                    r[k] = f"{_fmt(v['first'])} → {_fmt(v['last'])}"
            recs.append(r)
        keys = list(dict.fromkeys(k for r in recs for k in r))
        parts.append("<h2>Training</h2>" + _html_records(recs, [(k, k) for k in keys])
                     + "<p class='note'>x → y: mean over the first and the last 10% of the logged steps.</p>")

    stems = _figure_stems(run.figures)
    if stems:
        key = [s for s in stems if s in KEY_FIGURES or embed_all]
        rest = [s for s in stems if s not in key]
        parts.append("<h2>Figures</h2><div class='figs'>")
        for s in key:
            parts.append(f"<figure><img alt='{html.escape(s)}' src='{_img_b64(run.figures / (s + '.png'))}'>"
                         f"<figcaption>{html.escape(s)}</figcaption></figure>")
        for s in rest:
            rel = f"figures/{s}.png"
            parts.append(f"<figure><a href='{html.escape(rel)}'><img alt='{html.escape(s)}' src='{html.escape(rel)}'></a><figcaption>{html.escape(s)}</figcaption></figure>")
        parts.append("</div>")

    parts.append("<h2>Raw metrics.json</h2><pre>" + html.escape(json.dumps(metrics, indent=1)) + "</pre>")
    parts.append("</body></html>")
    return atomic_write_text(run.report_path, "\n".join(parts))


# --------------------------------------------------------------------------------------------------
# CLI (wired by omnibench/cli.py)
# --------------------------------------------------------------------------------------------------


def add_report_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench report``."""
    parser.add_argument("run", help="run folder, or a run name under --runs-dir")
    parser.add_argument("--runs-dir", default="runs", help="parent folder of run folders (default: runs)")
    return parser


def cli_report(args: argparse.Namespace) -> int:
    """``omnibench report RUN``: (re)build report.html of a run folder and print the table."""
    path = Path(args.run)
    if not path.is_dir():
        path = Path(args.runs_dir) / args.run
    if not path.is_dir():
        print(f"omnibench report: no run folder {args.run!r} (nor {path})", file=sys.stderr)
        return 1
    out = build_report(path)
    print(f"report: {out}")
    run = RunFolder(path, create=False)
    print(format_table(run.read_metrics(), skipped=run.skipped_counts()))
    return 0
