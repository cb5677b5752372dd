"""Torch on one CPU thread for small work: the one home of that rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread(when: bool = True) -> Iterator[None]:
    """Run the block with torch on one CPU thread, then restore the thread count.

    One tune is a chain of tiny matrix-vector products: a second thread only adds
    synchronisation, and costs several times the run time when the other core is busy.
    ``when=False`` leaves the thread count alone (big batches gain from threads).
    """
    if not when:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


