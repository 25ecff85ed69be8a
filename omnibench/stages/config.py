"""What every stage's config shares: fields with one help text each, built from a notebook, a recipe or flags.

A stage's config is a dataclass whose fields are exactly the parameters of that stage's notebook
(``run_dir`` aside: the run folder is the stage function's first argument). Each field carries its
help text in ``metadata["help"]``, the only place it is written: the notebook's ``parameters`` cell
repeats it as the trailing comment (``tests/test_stages.py`` checks names, defaults and help texts
against the notebooks), and the ``omnibench eval`` / ``omnibench attribute`` flags take their defaults
and help from the same fields (:func:`flag`). ``StageConfig.from_namespace(globals())`` is how a
notebook hands its parameters to the stage in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["ATTN_HELP", "DEVICE_HELP", "DTYPE_HELP", "MODEL_LOAD_FIELDS", "StageConfig", "field_default", "field_help", "flag",
           "knob"]

#: The fields every stage that loads a model has, as :func:`omnibench.model.load_model` names them.
MODEL_LOAD_FIELDS = ("device", "dtype", "attn_implementation")
#: Their help texts (one per knob, shared by every stage that has it).
DEVICE_HELP = "where models run: auto (CUDA when present, else the CPU) | cpu | cuda | cuda:N"
DTYPE_HELP = ("weights' dtype: auto (training: float32 master weights + bf16 autocast on a GPU; inference: bf16 on a "
              "GPU) | float32 | bfloat16")
ATTN_HELP = "attention kernels: \"\" (transformers' choice) | sdpa | eager | flash_attention_2"


def knob(default: Any, help: str) -> Any:
    """A dataclass field with its help text (mutable defaults are copied per instance)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def field_help(cls, name: str) -> str:
    """The help text of ``cls``'s field ``name``."""
    return _fields(cls)[name].metadata["help"]


def field_default(cls, name: str) -> Any:
    f = _fields(cls)[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def flag(cls, name: str, **kwargs) -> dict:
    """``parser.add_argument`` keywords for the field ``name``: its default and help text, so that a
    command's flag and the notebook's parameter cannot disagree (``kwargs`` add ``type``, ``choices``...)."""
    return {"default": field_default(cls, name), "help": field_help(cls, name), **kwargs}


@dataclasses.dataclass
class StageConfig:
    """Base of the stage configs: construction from a mapping that rejects unknown keys."""

    #: the notebook (in ``notebooks/``) whose ``parameters`` cell declares these fields
    notebook: ClassVar[str] = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "") -> StageConfig:
        """The config from ``values`` (a recipe section, resolved pipeline parameters); a key that is not
        a field is an error naming it and the fields (``run_dir`` is ignored: it is the run folder)."""
        names = set(cls.field_names())
        unknown = sorted(set(values) - names - {"run_dir"})
        if unknown:
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}{unknown} are not {cls.__name__} fields ({', '.join(sorted(names))})")
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> StageConfig:
        """The config from a notebook's globals after its ``parameters`` cell (every field must be set
        there: a missing one means the notebook and the config have drifted apart)."""
        missing = [n for n in cls.field_names() if n not in namespace]
        if missing:
            raise NameError(f"{cls.notebook or cls.__name__}: parameters {missing} are not set; the notebook's "
                            f"parameters cell must declare every {cls.__name__} field")
        return cls(**{n: namespace[n] for n in cls.field_names()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_flags(self) -> dict:
        """The placement flags as the training recipes take them (device, dtype, attention; "" is None)."""
        return {"device": self.device, "dtype": self.dtype, "attn_implementation": self.attn_implementation or None}

    def load_kwargs(self, shards=None) -> dict:
        """:func:`omnibench.model.load_model` keywords (device, dtype, attention) from the config; with
        :class:`~omnibench.stages.shards.Shards`, ``device="auto"`` is this process's own device."""
        from omnibench.model.loading import model_load_kwargs

        device = shards.device(self.device) if shards is not None else self.device
        return model_load_kwargs({"device": device, "dtype": self.dtype,
                                  "attn_implementation": self.attn_implementation or None})
