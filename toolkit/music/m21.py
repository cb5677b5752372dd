"""music21, imported without its notebook side effects.

Imported inside Jupyter, music21 starts a timer (``music21.ipython21``) that a second later
switches matplotlib to interactive mode and every inline figure to ``retina``: four times the
pixels for every figure shown afterwards, in memory while it is drawn and in a saved notebook's
PNG outputs.  A student who never asked for music21 (the toolkit reaches for it only when verovio
cannot read a tune, for MusicXML and MIDI, and for the outside checks) would see their plots
change half-way through a notebook.  Every place in the toolkit that imports music21 calls
:func:`load` first, which imports it and stops that timer.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["load"]


def load() -> ModuleType:
    """``import music21``; the first time, cancel its notebook set-up timer. Returns music21."""
    first = "music21" not in sys.modules
    import music21

    if first:
        timer = getattr(sys.modules.get("music21.ipython21"), "t", None)
        if timer is not None and hasattr(timer, "cancel"):
            timer.cancel()
    return music21
