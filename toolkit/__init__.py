"""Folk Sampler: learn how sampling shapes what a generative model makes.

The public API, imported lazily so that ``import toolkit`` stays fast::

    from toolkit import load_model, generate, sampling as S
    model = load_model()               # the LSTM; load_model("transformer") the transformer
    chain = S.chain(S.temperature(1.2), S.top_p(0.9))
    tunes = generate(model, n=4, meter="6/8", mode="maj", sampler=chain, seed=7)

The package is laid out in layers, and each imports only from the layers above it in this list
(``tests/test_layers.py`` walks the imports and fails on an upward import or a cycle):

* :mod:`toolkit.music`   -- ABC text and tokens, the reader, ``Tune``, score, sound, notes, the
  token checker (the musical facts, each in one place);
* :mod:`toolkit.lm`      -- the network, the bar clock, data, training, ``generate`` and
  :mod:`toolkit.lm.sampling` (the sampler steps, chains, schedules, constraints);
* :mod:`toolkit.measure` -- metrics, the music21 cross-check, sweeps, steering measurements;
* :mod:`toolkit.lessons` -- pure plot functions and the widgets, studios and views built on them;
* :mod:`toolkit.cli`     -- ``python -m toolkit``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "load_model": "toolkit.lm.model",
    "FolkLSTM": "toolkit.lm.model",
    "FolkTransformer": "toolkit.lm.model",
    "Network": "toolkit.lm.network",
    "generate": "toolkit.lm.generation",
    "Tune": "toolkit.music.tune",
    "encode": "toolkit.music.tokens",
    "decode": "toolkit.music.tokens",
}
# the short module names students type (``from toolkit import sampling as S``) -> their home
_SUBMODULES = {
    "music": "toolkit.music", "lm": "toolkit.lm", "measure": "toolkit.measure",
    "lessons": "toolkit.lessons", "cli": "toolkit.cli",
    "tokens": "toolkit.music.tokens", "tune": "toolkit.music.tune",
    "render": "toolkit.music.render", "audio": "toolkit.music.audio",
    "data": "toolkit.lm.data", "model": "toolkit.lm.model",
    "network": "toolkit.lm.network", "transformer": "toolkit.lm.transformer",
    "sampling": "toolkit.lm.sampling",
    "generation": "toolkit.lm.generation", "train": "toolkit.lm.train",
    "metrics": "toolkit.measure.metrics", "sweep": "toolkit.measure.sweep",
    "steering": "toolkit.measure.steering",
    "plots": "toolkit.lessons.plots", "widgets": "toolkit.lessons.widgets",
    "studio": "toolkit.lessons.studio", "shaping": "toolkit.lessons.shaping",
    "training_view": "toolkit.lessons.training_view", "exercises": "toolkit.lessons.exercises",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
