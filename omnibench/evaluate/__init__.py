"""Evaluation: batched greedy generation, answers resolved, WAR/UAR with bootstrap CIs, metrics.json.

From pure to model-bound, one module each:

* :mod:`~omnibench.evaluate.metrics` -- :func:`metrics` (WAR, UAR, per-class recall, confusion,
  unparseable rate, seeded bootstrap CIs), :func:`subset_metrics` (the cross-dataset 7-class subset),
  the ``metrics.json`` cells and table.
* :mod:`~omnibench.evaluate.result` -- :class:`EvalResult` (parallel arrays, ``to_frame``,
  predictions JSONL) and :func:`read_external_predictions` (another model's outputs, same rules).
* :mod:`~omnibench.evaluate.runner` -- :func:`evaluate_split` (generate or score, then resolve with
  :func:`omnibench.answers.resolve`, the rule the accuracy reward uses too) and :func:`eval_labels`
  (each split scored against its own dataset's label set).
* ``omnibench eval`` is the evaluation stage's command (:mod:`omnibench.stages.commands`).

Answers are resolved by :mod:`omnibench.answers`: ``ok`` | ``alias`` | ``out_of_set`` | ``unparseable``;
the last two are wrong answers, kept (never dropped) and counted.
"""

from omnibench.evaluate.metrics import (
    SUMMARY_KEYS,
    eval_table,
    format_table,
    metrics,
    subset_metrics,
    summary_cell,
    update_metrics_json,
    validate_eval_schema,
)
from omnibench.evaluate.result import EvalResult, read_external_predictions, read_predictions
from omnibench.evaluate.runner import EvalConfig, eval_labels, evaluate_split, model_labels

__all__ = [
    "SUMMARY_KEYS", "EvalConfig", "EvalResult", "eval_labels", "eval_table", "evaluate_split", "format_table", "metrics", "model_labels",
    "read_external_predictions", "read_predictions", "subset_metrics", "summary_cell", "update_metrics_json", "validate_eval_schema",
]
