"""The stage layer: one function per stage of the workbench, called by every front end.

Each stage takes the run folder (:class:`omnibench.run.RunFolder`) and its config dataclass, writes
its outputs into the run folder (``metrics.json`` through the one merge of :mod:`omnibench.run`) and
returns what it made. The notebooks (``notebooks/0N_*.ipynb``: parameters cell = the config's
fields, one call per step, then plots), the ``omnibench eval`` / ``omnibench attribute`` commands,
``omnibench run`` / ``omnibench study`` (through the notebooks) and the dashboard call these
functions, so no front end holds a stage's orchestration of its own.

=============  ==========================  =====================================  ======================
stage          config                      function(s)                            notebook
=============  ==========================  =====================================  ======================
data           :class:`DataStageConfig`    :func:`data_stage`                     ``01_data``
cold_start     :class:`ColdStartStageConfig` :func:`base_stage`, :func:`cold_start_stage`  ``02_cold_start``
grpo           :class:`GRPOStageConfig`    :func:`grpo_stage`                     ``03_grpo``
evaluate       :class:`EvaluateStageConfig`  :func:`evaluate_stage`               ``04_evaluate``
attribution    :class:`AttributionStageConfig`  :func:`attribution_stage`         ``05_attribution``
report         --                          :func:`omnibench.report.build_report`  --
=============  ==========================  =====================================  ======================

Importing this package imports neither torch nor TRL; a stage imports the model layer when it runs.
"""

from __future__ import annotations

from omnibench.stages.attribution import AttributionStageConfig, AttributionStageResult, attribution_stage
from omnibench.stages.config import StageConfig
from omnibench.stages.data import DataStageConfig, DataStageResult, class_examples, data_stage
from omnibench.stages.evaluate import EvaluateStageConfig, EvaluateStageResult, by_condition, evaluate_stage
from omnibench.stages.train import (
    ColdStartStageConfig,
    GRPOStageConfig,
    base_stage,
    cold_start_stage,
    grpo_stage,
    sample_completions,
)

#: stage name (a recipe section, :data:`omnibench.run.STAGES`) -> its config class
STAGE_CONFIGS: dict[str, type[StageConfig]] = {
    "data": DataStageConfig, "cold_start": ColdStartStageConfig, "grpo": GRPOStageConfig,
    "evaluate": EvaluateStageConfig, "attribution": AttributionStageConfig,
}

__all__ = [
    "STAGE_CONFIGS", "AttributionStageConfig", "AttributionStageResult", "ColdStartStageConfig", "DataStageConfig",
    "DataStageResult", "EvaluateStageConfig", "EvaluateStageResult", "GRPOStageConfig", "StageConfig",
    "attribution_stage", "base_stage", "by_condition", "class_examples", "cold_start_stage", "data_stage",
    "evaluate_stage", "grpo_stage", "sample_completions",
]
