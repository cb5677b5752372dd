"""Per-step cost of the sampler chain at the folk vocabulary size (V = 140).

The headline figure is one call of ``chain.sample(logits, generator)`` for the chain
temperature(1.2) → top_k(40) → top_p(0.9) → draw: the work the sampler adds to every generated
token. It is measured for batch 1 (one tune, the notebook case) and batch 64 (a sweep), both
bare and inside ``torch.inference_mode()`` (how ``toolkit.lm.generation`` runs it). Then every
stage and every other step on its own, batch 1, to show where the time goes.

Run:  .venv/bin/python benchmarks/bench_sampling.py     (under a minute; 2 threads)
Figures are medians of many single-call timings after a warm-up; other processes on the
machine inflate them, so the load average is printed too.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit import sampling as S  # noqa: E402

V = 140


def median_us(fn: Callable[[], object], reps: int, warmup: int = 1000) -> float:
    """Median wall time of one call, in µs."""
    for _ in range(warmup):
        fn()
    times = []
    clock = time.perf_counter_ns
    for _ in range(reps):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times) / 1000


def main() -> None:
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    g = torch.Generator().manual_seed(0)
    chain = S.chain(S.temperature(1.2), S.top_k(40), S.top_p(0.9))
    print(f"\n{chain!r}, V = {V}: µs per step (one chain.sample call, median)")
    print(f"  {'batch':>5}  {'bare':>8}  {'inference_mode':>14}  {'per row':>19}")
    for batch, reps in ((1, 20000), (64, 3000)):
        logits = torch.randn(batch, V, generator=g) * 3
        figures = []
        for mode in (nullcontext, torch.inference_mode):
            with mode():
                figures.append(median_us(lambda x=logits: chain.sample(x, g), reps))
        print(f"  {batch:>5}  {figures[0]:>8.1f}  {figures[1]:>14.1f}  "
              f"{figures[1] / batch:>19.2f}   (2 threads)")
    # On a busy machine a 2-thread OpenMP region can wait a whole scheduler slice for its
    # second thread; one thread shows the cost of the work itself.
    torch.set_num_threads(1)
    logits = torch.randn(64, V, generator=g) * 3
    one = median_us(lambda: chain.sample(logits, g), 3000)
    print(f"  {64:>5}  {one:>8.1f}  {'':>14}  {one / 64:>19.2f}   (1 thread, bare)")
    torch.set_num_threads(2)

    x = torch.randn(1, V, generator=g) * 3
    history = torch.randint(0, V, (1, 64), generator=g)
    ctx = S.Context(history=history, step=10, bar=torch.tensor([3]),
                    uncond_logits=torch.randn(1, V, generator=g))
    steps = [S.min_p(0.05), S.typical_p(0.9), S.epsilon(3e-4), S.eta(3e-4),
             S.repetition_penalty(1.2), S.no_repeat_ngram(4), S.guidance(1.5),
             S.temperature_by_bar([0.8, 1.2]), S.dynamic_temperature()]
    miro = S.chain(S.mirostat(3.0))
    stages: list[tuple[str, Callable[[], object]]] = [
        ("input check (empty chain)", lambda: S.chain()(x)),
        *[(repr(s), lambda s=s: s.step(x)) for s in chain],
        ("draw (S.draw)", lambda: S.draw(x, g)),
        *[(repr(s) if len(repr(s)) < 26 else type(s).__name__, lambda s=s: s.step(x, ctx))
          for s in steps],
        ("Mirostat(3): sample", lambda: miro.sample(x, g)),
        ("explain (3 steps)", lambda: S.explain(x, chain, generator=g)),
    ]
    print("\nbatch 1, bare: µs per call (median)")
    for name, fn in stages:
        reps = 1000 if name.startswith("explain") else 5000
        print(f"  {name:<26}{median_us(fn, reps, warmup=200):>8.1f}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
