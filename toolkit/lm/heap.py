"""Memory given back: a kernel's size follows what it holds, not the most it ever held.

A class on Binder or JupyterHub keeps several kernels open under one memory limit
(``benchmarks/bench_memory.py`` measures each notebook), and two habits of the libraries
underneath would make every kernel grow as a student works:

* **oneDNN** (PyTorch's CPU kernels for the LSTM when it trains or scans a whole tune) keeps up to
  1,024 compiled primitives, one per input shape, each with its own copy of the weights: scanning
  200 tunes of different lengths left 63 MB behind, measured.  :func:`configure` caps the cache at
  :data:`ONEDNN_CACHE` primitives (19 MB), unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` is already
  set.  The variable is read when the first primitive is made, after ``import torch``.
* **glibc's malloc** keeps freed blocks inside its heap for reuse, so a kernel that once trained a
  network or generated a large batch keeps that memory though nothing holds it.
  :func:`release` hands the free pages back (``malloc_trim``); elsewhere (macOS, musl) it does
  nothing.
* **Python's cycle collector** frees a figure (matplotlib's objects refer to each other) only
  at its next full collection, so every figure a cell showed stayed in the kernel for a while,
  buffers and all.

In an IPython kernel :func:`configure` runs :func:`after_cell` after every cell: a collection
and a release.  A full collection of a kernel that has loaded torch walks some 200,000 objects
(about 0.1 s), so the objects alive after the first cell that loaded torch are frozen
(``gc.freeze``: its modules, functions and classes, which are never garbage) and later
collections walk only what came after (a millisecond or two).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

__all__ = ["ONEDNN_CACHE", "after_cell", "configure", "release"]

ONEDNN_CACHE = 8
_trim = None
_configured = False
_frozen = False


def _malloc_trim():
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc
                _trim = False
    return _trim


def release(*_args) -> bool:
    """Give the heap's free pages back to the system; True when there was something to give
    (always False where the C library cannot).  Accepts and ignores arguments, so that it can
    be an IPython event callback."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


def after_cell(*_args) -> None:
    """Collect the cycles left behind (figures) and give the free pages back; freeze, once,
    what a kernel holds after its first cell that loaded torch.  An IPython event callback."""
    global _frozen
    gc.collect()
    if not _frozen and "torch" in sys.modules:
        gc.freeze()
        _frozen = True
    release()


def configure() -> None:
    """Cap oneDNN's primitive cache and, in an IPython kernel, run :func:`after_cell` after
    every cell.
    Called once when :mod:`toolkit.lm` is first imported."""
    global _configured
    if _configured:
        return
    _configured = True
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE))
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and _malloc_trim():
        shell.events.register("post_run_cell", after_cell)
