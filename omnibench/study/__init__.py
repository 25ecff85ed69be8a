"""A study: one pipeline recipe run over seeds (or DFEW/MAFW folds), aggregated into ``study.json`` / ``study.html``.

Why: one run of the demo cannot carry a claim. The same seed on two machines moved table cells by up
to six points and flipped the sign of GRPO's out-of-distribution effect. A study trains the recipe once
per seed (the training seed and the SynthEmo draw both follow it, unless the recipe pins the data) and
reports

* every table cell (checkpoint x split, WAR and UAR) as a mean over seeds with a Student-t 95% CI over
  seeds, plus a two-level bootstrap CI over seeds and clips (:func:`omnibench.stats.bootstrap_seeds_clips`);
* the paired comparisons of the R1-Omni question, per split: GRPO - cold start, GRPO - label-only SFT,
  cold start - label-only SFT, as the mean per-seed difference with a paired two-level bootstrap CI
  (clips of a seed resampled together for both checkpoints, then seeds;
  :func:`omnibench.stats.paired_bootstrap_seeds_clips`) and the fraction of seeds where it is > 0.

Layout::

    runs/<name>/study.json            units, cells, comparisons, method, what was missing
    runs/<name>/study.html            the same as tables
    runs/<name>/recipes/<unit>.yaml   the recipe each unit ran (the study's recipe + seed / fold)
    runs/<name>/<unit>/               a run folder as ``omnibench run`` writes it (seed0/, fold3/, seed1_fold3/)
    runs/<name>/<unit>.log            the unit's console output when units run in parallel (--jobs)

Reuse: a unit whose folder holds a completed run of the same recipe (``study_recipe.yaml`` equal, every
stage ``ok``) is not re-run; an interrupted one resumes from its first stage that did not finish. So
re-running a study after a crash, or adding a seed, only runs what is missing.

Folds: ``--folds 1,2,3,4,5`` sets each fold into the recipe at ``--fold-key`` (a dotted path; ``*`` walks
every item of a list), by default ``data.sources.*.fold``, the per-source fold of the protocol issue's
``data.sources`` list (a recipe with another shape names its key, e.g. ``--fold-key data.fold``).

The fair label-only budget (:func:`label_only_budget`): the label-only SFT baseline gets as many example
visits as cold start and GRPO together (cold-start epochs x its clips + GRPO steps x clips per step),
computed from the recipe, so that "GRPO beats SFT" is not "more training beats less".
"""

from omnibench.study.aggregate import aggregate_study, format_study, render_study_html
from omnibench.study.runner import add_study_args, cli_study, main, run_study
from omnibench.study.units import (
    COMPARISONS,
    DEFAULT_FOLD_KEY,
    SPLIT_ORDER,
    StudyError,
    Unit,
    data_pinned,
    label_only_budget,
    parse_list,
    set_path,
    study_units,
    unit_recipe,
)

__all__ = [
    "COMPARISONS", "DEFAULT_FOLD_KEY", "SPLIT_ORDER", "StudyError", "Unit", "add_study_args", "aggregate_study",
    "cli_study", "data_pinned", "format_study", "label_only_budget", "main", "parse_list", "render_study_html",
    "run_study", "set_path", "study_units", "unit_recipe",
]
