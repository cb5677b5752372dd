"""Sweeps and search: what sampling settings do to tunes, measured.

A *sweep* runs every combination of some sampler settings × seeds, generates a batch of tunes for
each, measures them (:mod:`toolkit.measure.metrics`) and writes one row per cell to a tidy
JSON-lines table.  It resumes where it stopped (rows already in the file are skipped) and can hand
its cells to any ``concurrent.futures`` executor, so Dask's or Ray's executor works unchanged.

>>> rows = sweep(model, {"temperature": [0.8, 1.2]}, seeds=[1, 2], n=32)   # doctest: +SKIP
>>> best = search(model, {"temperature": [0.5, 1, 1.5, 2]}, objective="distinct_4",
...               constraint=lambda r: r["valid"] >= 0.95)                  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from toolkit.measure import metrics

__all__ = ["SAMPLER_PARAMS", "sweep", "search", "SearchResult", "summarise", "corpus_reference",
           "plot_metric", "plot_heatmap", "plot_vs_corpus", "plot_search"]

SAMPLER_PARAMS = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta")
GENERATION_PARAMS = ("meter", "mode", "style", "guidance", "max_tokens")


def _key(settings: dict, seed: int) -> str:
    return json.dumps({**settings, "seed": seed}, sort_keys=True)


def run_cell(model, settings: dict, seed: int, n: int, memorisation=None) -> dict:
    """Generate ``n`` tunes with one setting and seed; return the row of measurements."""
    from toolkit.lm import sampling as S
    from toolkit.lm.generation import generate

    unknown = set(settings) - set(SAMPLER_PARAMS) - set(GENERATION_PARAMS)
    if unknown:
        raise ValueError(f"unknown sweep parameter(s) {sorted(unknown)}; allowed: "
                         f"{', '.join(SAMPLER_PARAMS + GENERATION_PARAMS)}")
    chain = S.temperature_first(**{k: v for k, v in settings.items() if k in SAMPLER_PARAMS})
    gen = {k: v for k, v in settings.items() if k in GENERATION_PARAMS}
    t0 = time.perf_counter()
    tunes = generate(model, n=n, seed=seed, sampler=chain, **gen)
    gen_seconds = time.perf_counter() - t0
    tokens = [t.tokens for t in tunes]
    row = {**settings, "seed": seed, "n": n}
    row.update(metrics.batch_metrics(tokens, memorisation=memorisation))
    row["surprisal_bits"] = sum(metrics.tune_surprisal(t.logprobs) for t in tunes) / n
    row["generate_seconds"] = round(gen_seconds, 3)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def sweep(model, grid: dict[str, Sequence], seeds: Sequence[int] = (0,), n: int = 64, *,
          out: str | Path | None = None, executor: Executor | None = None,
          memorisation=None, progress: bool = True) -> list[dict]:
    """Run every combination of ``grid`` × ``seeds``; return (and append to ``out``) the rows.

    ``grid`` maps a parameter (``temperature``, ``top_k``, ``top_p``, ``min_p``, ``typical_p``,
    ``epsilon``, ``eta``, or ``meter``/``mode``/``style``/``guidance``/``max_tokens``) to its
    values.  With ``out``, rows already in that JSON-lines file are kept and their cells skipped,
    so an interrupted sweep resumes.  With ``executor``, cells run as ``executor.submit(...)``.
    """
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"grid must be a non-empty dict of parameter -> values, got {grid!r}")
    for k, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{k!r}] must be a non-empty list of values, got {values!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    names = list(grid)
    cells = [(dict(zip(names, combo, strict=True)), seed)
             for combo in itertools.product(*(grid[k] for k in names)) for seed in seeds]
    done: dict[str, dict] = {}
    path = Path(out) if out else None
    if path and path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                settings = {k: row[k] for k in names if k in row}
                done[_key(settings, row["seed"])] = row
    todo = [(s, seed) for s, seed in cells if _key(s, seed) not in done]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="sweep")
    new_rows: dict[str, dict] = {}

    def record(row: dict) -> None:
        settings = {k: row[k] for k in names}
        new_rows[_key(settings, row["seed"])] = row
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if bar is not None:
            bar.update(1)

    if executor is None:
        for settings, seed in todo:
            record(run_cell(model, settings, seed, n, memorisation))
    else:
        futures = [executor.submit(run_cell, model, s, seed, n, memorisation) for s, seed in todo]
        for f in futures:
            record(f.result())
    if bar is not None:
        bar.close()
    rows = {**done, **new_rows}
    return [rows[_key(s, seed)] for s, seed in cells]


def summarise(rows: Sequence[dict], by: Sequence[str], metric: str) -> list[dict]:
    """Mean, min and max of ``metric`` over seeds, for each combination of the ``by`` columns."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(float(r[metric]))
    return [{**dict(zip(by, k, strict=True)), "mean": sum(v) / len(v), "min": min(v),
             "max": max(v), "seeds": len(v)} for k, v in groups.items()]


# --------------------------------------------------------------------------------------------
# two-stage search

@dataclass
class SearchResult:
    """Both stages of a search and the best setting found (``None`` if nothing qualified)."""

    coarse: list[dict]
    fine: list[dict]
    best: dict | None
    objective: str

    def __repr__(self) -> str:
        return (f"SearchResult(objective={self.objective!r}, best={self.best}, "
                f"coarse={len(self.coarse)} rows, fine={len(self.fine)} rows)")


def _score_settings(rows: Sequence[dict], names: Sequence[str], objective: str,
                    constraint: Callable[[dict], bool] | None) -> list[tuple[float, dict]]:
    """Average rows over seeds, keep the settings that satisfy the constraint, score them."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in names), []).append(r)
    scored = []
    for k, rs in groups.items():
        mean = {m: sum(float(r[m]) for r in rs) / len(rs) for m in rs[0]
                if isinstance(rs[0][m], int | float | bool) and m not in names}
        mean.update(dict(zip(names, k, strict=True)))
        if constraint is None or constraint(mean):
            scored.append((mean[objective], mean))
    return sorted(scored, key=lambda t: -t[0])


def _refine(values: Sequence, best, points: int) -> list:
    values = sorted(values)
    i = values.index(best)
    lo = values[max(0, i - 1)]
    hi = values[min(len(values) - 1, i + 1)]
    if isinstance(best, int) and not isinstance(best, bool):
        step = max(1, (hi - lo) // (points + 1))
        return sorted(set(range(lo, hi + 1, step)) | {best})
    return sorted({round(lo + (hi - lo) * j / (points + 1), 4) for j in range(points + 2)} | {best})


def search(model, coarse: dict[str, Sequence], objective: str = "distinct_4",
           constraint: Callable[[dict], bool] | None = None, seeds: Sequence[int] = (0, 1),
           n: int = 32, points: int = 3, out: str | Path | None = None,
           executor: Executor | None = None, progress: bool = True) -> SearchResult:
    """Coarse grid, then a finer grid around the best coarse setting.

    ``objective`` is the metric to maximise (averaged over seeds); ``constraint(row) -> bool``
    keeps only the settings allowed, e.g. ``lambda r: r["valid"] >= 0.95``.  The fine grid puts
    ``points`` values between the best coarse value and each of its neighbours.
    """
    names = list(coarse)
    p1 = Path(out).with_suffix(".coarse.jsonl") if out else None
    p2 = Path(out).with_suffix(".fine.jsonl") if out else None
    rows1 = sweep(model, coarse, seeds, n, out=p1, executor=executor, progress=progress)
    scored = _score_settings(rows1, names, objective, constraint)
    if not scored:
        return SearchResult(rows1, [], None, objective)
    best1 = scored[0][1]
    fine_grid = {k: _refine(coarse[k], best1[k], points) if len(coarse[k]) > 1 else list(coarse[k])
                 for k in names}
    rows2 = sweep(model, fine_grid, seeds, n, out=p2, executor=executor, progress=progress)
    scored2 = _score_settings(rows1 + rows2, names, objective, constraint)
    return SearchResult(rows1, rows2, scored2[0][1] if scored2 else best1, objective)


# --------------------------------------------------------------------------------------------
# the corpus's own figures, to read every generated figure against

def corpus_reference(records: Sequence[dict], n: int = 64, batches: int = 4, seed: int = 0,
                     memorisation=None) -> dict:
    """Mean metrics of random batches of ``n`` corpus tunes (e.g. the test split)."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(batches):
        batch = rng.sample(list(records), min(n, len(records)))
        rows.append(metrics.batch_metrics([r["tokens"] for r in batch], memorisation=memorisation))
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


# --------------------------------------------------------------------------------------------
# pictures (pure: data in, axes out)

def plot_metric(rows: Sequence[dict], metric: str, x: str = "temperature",
                hue: str | None = None, reference: float | None = None, ax=None):
    """``metric`` against ``x`` with the spread over seeds (band = min..max, line = mean)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    hues = sorted({r[hue] for r in rows}, key=str) if hue else [None]
    for h in hues:
        sub = [r for r in rows if hue is None or r[hue] == h]
        s = sorted(summarise(sub, [x], metric), key=lambda d: d[x])
        xs = [d[x] for d in s]
        ax.plot(xs, [d["mean"] for d in s], marker="o", label=f"{hue} = {h}" if hue else metric)
        ax.fill_between(xs, [d["min"] for d in s], [d["max"] for d in s], alpha=0.2)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", label="corpus")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_heatmap(rows: Sequence[dict], metric: str, x: str = "temperature", y: str = "top_p",
                 ax=None):
    """Mean of ``metric`` over seeds on an ``x`` × ``y`` grid, values written in the cells."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    xs = sorted({r[x] for r in rows})
    ys = sorted({r[y] for r in rows})
    means = {(d[x], d[y]): d["mean"] for d in summarise(rows, [x, y], metric)}
    grid = [[means.get((xv, yv), float("nan")) for xv in xs] for yv in ys]
    im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center",
                    color="white" if v < (im.norm.vmin + im.norm.vmax) / 2 else "black")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.set_title(metric.replace("_", " "))
    ax.figure.colorbar(im, ax=ax)
    return ax


def plot_vs_corpus(generated: dict, corpus: dict, names: Sequence[str], ax=None):
    """Bars of generated against corpus figures for some metrics (each scaled to the corpus)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 4))[1]
    idx = range(len(names))
    ax.bar([i - 0.2 for i in idx], [generated[m] for m in names], width=0.4, label="generated",
           color="#0072B2")
    ax.bar([i + 0.2 for i in idx], [corpus[m] for m in names], width=0.4, label="corpus",
           color="#E69F00")
    ax.set_xticks(list(idx), [m.replace("_", "\n") for m in names])
    ax.legend()
    return ax


def plot_search(result: SearchResult, x: str, metric: str | None = None, ax=None):
    """Both stages of a search on one axis: coarse points, fine points, the best one starred."""
    import matplotlib.pyplot as plt

    metric = metric or result.objective
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for rows, label, style in ((result.coarse, "coarse grid", "o"),
                               (result.fine, "fine grid", "s")):
        s = sorted(summarise(rows, [x], metric), key=lambda d: d[x]) if rows else []
        ax.plot([d[x] for d in s], [d["mean"] for d in s], style, label=label, alpha=0.8)
    if result.best is not None:
        ax.plot([result.best[x]], [result.best[metric]], "*", markersize=18, color="#D55E00",
                label="best")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
