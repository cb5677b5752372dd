"""Per-step cost of the sampler chain at the folk vocabulary size (V = 117), beside
transformers' logits processors.

The headline figure is one call of ``chain.sample(logits, generator)`` for the chain
temperature(1.2) → top_k(40) → top_p(0.9) → draw: the work the sampler adds to every generated
token. It is measured for batch 1 (one tune, the notebook case) and batch 64 (a sweep), both
bare and inside ``torch.inference_mode()`` (how ``toolkit.lm.generation`` runs it). Then every
stage and every other step on its own, batch 1, to show where the time goes.

Run:  .venv/bin/python benchmarks/bench_sampling.py     (under a minute; 2 threads)
Figures are medians of many single-call timings after a warm-up; other processes on the
machine inflate them, so the load average is printed too.

Beside transformers (when it is installed: ``pip install -e ".[dev]"``): every step that has a
counterpart in ``transformers.generation.logits_process``, and the chain against a
``LogitsProcessorList`` of the same three warpers, on the same logits in the same run, one
thread, batch 1 and 64; written to ``benchmarks/results/sampling_vs_transformers.json``.
``tests/test_against_transformers.py`` checks that both keep the same tokens.
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

V = 117  # the shipped model's vocabulary
RESULTS = Path(__file__).parent / "results"


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
    against_transformers(g)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


def against_transformers(g: torch.Generator) -> dict | None:
    """Our steps and chain against transformers' processors: µs per call, one thread."""
    try:
        from transformers.generation import logits_process as lp
    except ImportError:
        print("\ntransformers is not installed: no side-by-side (pip install -e '.[dev]')")
        return None
    import json

    import transformers

    torch.set_num_threads(1)
    neg = float("-inf")
    pairs = [
        ("temperature 1.2", S.temperature(1.2), lp.TemperatureLogitsWarper(1.2)),
        ("top-k 40", S.top_k(40), lp.TopKLogitsWarper(40, filter_value=neg)),
        ("top-p 0.9", S.top_p(0.9), lp.TopPLogitsWarper(0.9, filter_value=neg)),
        ("min-p 0.05", S.min_p(0.05), lp.MinPLogitsWarper(0.05, filter_value=neg)),
        ("typical 0.9", S.typical_p(0.9), lp.TypicalLogitsWarper(0.9, filter_value=neg)),
        ("epsilon 3e-4", S.epsilon(3e-4), lp.EpsilonLogitsWarper(3e-4, filter_value=neg)),
        ("eta 3e-4", S.eta(3e-4), lp.EtaLogitsWarper(3e-4, filter_value=neg, device="cpu")),
        ("repetition penalty 1.2", S.repetition_penalty(1.2),
         lp.RepetitionPenaltyLogitsProcessor(1.2)),
        ("no-repeat 4-gram", S.no_repeat_ngram(4), lp.NoRepeatNGramLogitsProcessor(4)),
    ]
    ours_chain = S.chain(S.temperature(1.2), S.top_k(40), S.top_p(0.9))
    theirs_chain = lp.LogitsProcessorList([pairs[0][2], pairs[1][2], pairs[2][2]])
    rows = []
    print(f"\nbeside transformers {transformers.__version__}: µs per call, 1 thread, V = {V}")
    print(f"  {'':<24}{'B = 1':>18}{'B = 64':>20}")
    print(f"  {'':<24}{'ours / theirs':>18}{'ours / theirs':>20}")
    for name, ours, theirs in [*pairs, ("chain (3 steps)", ours_chain, theirs_chain),
                               ("chain + draw", ours_chain, theirs_chain)]:
        row = {"step": name}
        for batch in (1, 64):
            x = torch.randn(batch, V, generator=g) * 3
            ids = torch.randint(0, 12, (batch, 64), generator=g)
            ctx = S.Context(history=ids, step=64, vocab=[str(i) for i in range(V)])
            if name == "chain + draw":
                def mine(x=x, ctx=ctx):
                    return ours_chain.sample(x, g, ctx)

                def other(x=x, ids=ids):
                    probs = theirs_chain(ids, x).softmax(-1)
                    return torch.multinomial(probs, 1, generator=g)
            else:
                def mine(x=x, ctx=ctx, ours=ours):
                    return ours.step(x, ctx)

                def other(x=x, ids=ids, theirs=theirs):
                    return theirs(ids, x.clone())
            a, b = median_us(mine, 3000, 300), median_us(other, 3000, 300)
            row[f"ours_us_b{batch}"], row[f"transformers_us_b{batch}"] = round(a, 1), round(b, 1)
        rows.append(row)
        print(f"  {name:<24}{row['ours_us_b1']:>8.1f} / {row['transformers_us_b1']:<8.1f}"
              f"{row['ours_us_b64']:>10.1f} / {row['transformers_us_b64']:<8.1f}")
    chain = next(r for r in rows if r["step"] == "chain (3 steps)")
    for batch in (1, 64):
        ratio = chain[f"ours_us_b{batch}"] / chain[f"transformers_us_b{batch}"]
        print(f"  the chain costs {ratio:.2f}x transformers' list at B = {batch}")
    slower = [r["step"] for r in rows if r["ours_us_b1"] > r["transformers_us_b1"]
              or r["ours_us_b64"] > r["transformers_us_b64"]]
    print(f"  slower than transformers somewhere: {', '.join(slower) or 'none'}")
    out = {"transformers": transformers.__version__, "torch": torch.__version__, "threads": 1,
           "V": V, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sampling_vs_transformers.json").write_text(json.dumps(out, indent=1))
    torch.set_num_threads(2)
    return out


if __name__ == "__main__":
    main()
