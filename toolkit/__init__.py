"""Folk Sampler: learn how sampling shapes what a generative model makes.

The public API, imported lazily so that ``import toolkit`` stays fast::

    from toolkit import load_model, generate, sampling as S
    model = load_model()
    chain = S.chain(S.temperature(1.2), S.top_p(0.9))
    tunes = generate(model, n=4, meter="6/8", mode="maj", sampler=chain, seed=7)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "load_model": "toolkit.model",
    "FolkLSTM": "toolkit.model",
    "generate": "toolkit.generation",
    "Tune": "toolkit.tune",
    "encode": "toolkit.abc",
    "decode": "toolkit.abc",
}
_SUBMODULES = {"abc", "data", "model", "sampling", "generation", "tune", "render", "audio",
               "metrics", "train", "plots", "widgets", "cli"}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"toolkit.{name}")
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
