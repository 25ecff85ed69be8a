"""The embedded tiny model: a Qwen2.5-Omni (or Qwen3-Omni) thinker built from scratch, its tokenizer and
its perception pre-training.

It lives apart from :mod:`omnibench.model` (the generic omni layer: loading, inputs, generation,
scoring, the model's parts) because it is the offline default, built locally on two CPU cores, and a
real checkpoint never needs any of it: ``load_model("path/to/Qwen2.5-Omni-3B")`` brings its own
config, tokenizer and pre-trained towers.  Imports flow one way: this package uses the generic layer,
the generic layer never imports this package.

* :mod:`omnibench.tiny.model` -- the tiny config (:class:`TinySizes`) and :func:`build_tiny`;
* :mod:`omnibench.tiny.tokenizer` -- the locally trained byte-level BPE tokenizer with the Qwen
  special tokens and chat template;
* :mod:`omnibench.tiny.perception` -- perception pre-training of the tiny base model (the
  ``omnibench base`` command);
* :mod:`omnibench.tiny.bench` -- CPU (or GPU) timings of the tiny model (``python -m omnibench.tiny.bench``).

model, processor = build_tiny()            # then save_model / load_model as for any thinker
"""

from omnibench.tiny.model import TinySizes, build_tiny

__all__ = ["TinySizes", "build_tiny"]
