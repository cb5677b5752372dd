"""Memory given back: a kernel's size follows what it holds, not the most it ever held.

A class on Binder or JupyterHub keeps several kernels open under one memory limit
(``benchmarks/bench_memory.py`` measures each notebook), and two habits of the libraries
underneath would make every kernel grow as a student works:

* **oneDNN** (PyTorch's CPU kernels for the LSTM when it trains or scans a whole tune) keeps up to
  1,024 compiled primitives, one per input shape, each with its own copy of the weights: scanning
  200 tunes of different lengths left 64 MB behind (``benchmarks/bench_memory.py --part
  parts``).  In a kernel :func:`configure` caps the cache at :data:`ONEDNN_CACHE` primitives,
  unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` is already set (a training run from the command
  line keeps oneDNN's default).  The variable is read when the first primitive is made, after
  ``import torch``.
* **glibc's malloc** keeps freed blocks inside its heap for reuse, so a kernel that once trained a
  network or generated a large batch keeps that memory though nothing holds it.
  :func:`release` hands the free pages back (``malloc_trim``); elsewhere (macOS, musl) it does
  nothing.
* **Python's cycle collector** frees a figure (matplotlib's objects refer to each other) only
  at its next full collection, so every figure a cell showed stayed in the kernel for a while,
  buffers and all.

In an IPython kernel :func:`configure` runs :func:`after_cell` after every cell: a collection
and a release.  A full collection of a kernel that has loaded torch walks some 200,000 objects
(about 0.1 s), so the objects alive after a cell that loaded torch are frozen (``gc.freeze``:
mostly modules, functions and classes, which are never garbage) and the collections after the
next cells walk only what came later (a millisecond or two).  Every :data:`REFREEZE` cells
everything is thawed, collected in full and frozen again, so a frozen object that has become
garbage since (a figure kept in a variable, then replaced) is freed too.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

__all__ = ["ONEDNN_CACHE", "REFREEZE", "after_cell", "configure", "release"]

ONEDNN_CACHE = 8
REFREEZE = 25
_trim = None
_configured = False
_cells_since_freeze: int | None = None  # None: nothing frozen yet


def _malloc_trim():
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:  # the C library the process already runs on
                _trim = ctypes.CDLL(None).malloc_trim
                _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc (musl)
                _trim = False
    return _trim


def release(*_args) -> bool:
    """Give the heap's free pages back to the system; True when there was something to give
    (always False where the C library cannot).  Accepts and ignores arguments, so that it can
    be an IPython event callback."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


def after_cell(*_args) -> None:
    """Collect the cycles a cell left behind (figures) and give the free pages back; freeze
    what a kernel holds once torch is loaded, afresh every :data:`REFREEZE` cells.  An IPython
    event callback."""
    global _cells_since_freeze
    if _cells_since_freeze is not None:
        _cells_since_freeze += 1
        if _cells_since_freeze >= REFREEZE:
            gc.unfreeze()
            _cells_since_freeze = None
    gc.collect()
    if _cells_since_freeze is None and "torch" in sys.modules:
        gc.freeze()
        _cells_since_freeze = 0
    release()


def configure() -> None:
    """In an IPython kernel: cap oneDNN's primitive cache and run :func:`after_cell` after
    every cell.  Called once, when :mod:`toolkit.lm` is first imported."""
    global _configured
    if _configured:
        return
    _configured = True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE))
        shell.events.register("post_run_cell", after_cell)
