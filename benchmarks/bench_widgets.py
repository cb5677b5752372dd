"""Cost of one slider move in the distribution apps (toolkit.lessons.widgets), in the kernel.

    python benchmarks/bench_widgets.py [--n 100]

For each app and slider: set ``slider.value`` (the callback runs the sampler chain on one row
of logits, updates the artists in place and calls ``draw_idle()``) and time it until it returns.
With the Agg backend ``draw_idle()`` draws at once, so the time includes the canvas draw.

Two renderings are timed:

- **Agg**: what the guide's bar names (set value -> callback done, Agg draw included);
- **ipympl frame**: the same update, then what ipympl does in the kernel for each frame the
  browser asks for: a full draw plus the PNG diff it sends (``get_diff_image``), measured with
  matplotlib's WebAgg core canvas, which ipympl's canvas is built on.

Wall time (``perf_counter``) depends on what else the machine runs; CPU time (``process_time``)
much less, so both are printed, with the load average. Target (GUIDE.md §5): <= 30 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_webagg_core import (  # noqa: E402
    FigureCanvasWebAggCore,
    FigureManagerWebAgg,
)

from toolkit import load_model  # noqa: E402
from toolkit import widgets as W  # noqa: E402
from toolkit.lm.data import TOY_PATH  # noqa: E402
from toolkit.music.tokens import encode, split_tunes  # noqa: E402

TOY = str(TOY_PATH)


def jig_prefix() -> list[str]:
    """The first two bars of "The Willow Step" (toy tune 2, a jig in 6/8)."""
    tokens = encode(split_tunes(open(TOY, encoding="utf-8").read())[1])
    bars = [i for i, t in enumerate(tokens) if t in ("|", "||", ":|", "|:") and i > 5]
    return tokens[: bars[1] + 1]


def time_moves(slider, values: list, n: int, after: Callable[[], None] | None = None
               ) -> tuple[list[float], list[float]]:
    """Set ``slider.value`` n times, cycling through ``values``; (wall, cpu) seconds each."""
    for v in values[:3]:                         # warm-up: caches, first draws
        slider.value = v
    wall, cpu = [], []
    for i in range(n):
        v = values[i % len(values)]
        if slider.value == v:
            v = values[(i + 1) % len(values)]
        w0, c0 = time.perf_counter(), time.process_time()
        slider.value = v
        if after is not None:
            after()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


class Browser:
    """Stands in for the browser end of ipympl's comm: keeps the size of what it is sent."""

    def __init__(self) -> None:
        self.bytes = 0

    def send_json(self, content: dict) -> None:
        pass

    def send_binary(self, blob: bytes) -> None:
        self.bytes += len(blob)


def ms(xs: list[float], q: float = 0.5) -> float:
    return 1000 * float(np.quantile(xs, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="moves per slider")
    ap.add_argument("--no-cache", action="store_true",
                    help="disable the cached static layer (plots.cache_static): plain full draws")
    args = ap.parse_args()

    model = load_model()
    prefix = jig_prefix()
    temps = [0.1, 0.3, 0.6, 1.0, 1.5, 2.5, 4.0, 2.0, 0.8, 0.2]
    cases = [
        ("TemperatureExplorer", lambda: W.TemperatureExplorer(model, prefix),
         "temperature", temps),
        ("TruncationExplorer", lambda: W.TruncationExplorer(model, prefix, top_k=8),
         "temperature", temps),
        ("TruncationExplorer", lambda: W.TruncationExplorer(model, prefix), "top_p",
         [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 0.85, 0.75, 0.55]),
        ("TruncationExplorer", lambda: W.TruncationExplorer(model, prefix), "min_p",
         [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.15, 0.08, 0.04, 0.01]),
        ("TruncationExplorer", lambda: W.TruncationExplorer(model, prefix, temperature=1.5,
                                                            top_p=0.8), "order",
         list(W.ORDERS)),
        ("ChainOrderExplorer", lambda: W.ChainOrderExplorer(model, prefix), "temperature",
         temps),
    ]
    if args.no_cache:
        print("# static layer disabled: every draw renders everything")
        plain = cases

        def uncached(make):
            def build():
                app = make()
                app.static_layer.disable()
                return app
            return build

        cases = [(name, uncached(make), attr, values) for name, make, attr, values in plain]
    print(f"# slider update cost, {args.n} moves each; {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'app':<20} {'slider':<12} {'Agg wall ms':>18} {'Agg cpu ms':>11} "
          f"{'ipympl frame wall ms':>21} {'cpu ms':>7} {'layer rebuilds':>15}")
    for name, make, attr, values in cases:
        app = make()
        wall, cpu = time_moves(getattr(app, attr), values, args.n)
        rebuilds = app.static_layer.rebuilds
        app.close()
        # the ipympl path: a WebAgg-core canvas; draw_idle only queues a message, the frame
        # is drawn and diffed when the browser asks for it
        app = make()
        canvas = FigureCanvasWebAggCore(app.fig)
        manager = FigureManagerWebAgg(canvas, 0)
        manager.add_web_socket(Browser())

        def frame(canvas=canvas) -> None:
            canvas.draw()                     # ipympl: draw, then refresh_all sends the diff

        frame()
        wwall, wcpu = time_moves(getattr(app, attr), values, args.n, after=frame)
        app.close()
        print(f"{name:<20} {attr:<12} {ms(wall):>8.1f} (p90 {ms(wall, 0.9):>5.1f}) "
              f"{ms(cpu):>11.1f} {ms(wwall):>11.1f} (p90 {ms(wwall, 0.9):>5.1f}) "
              f"{ms(wcpu):>7.1f} {rebuilds:>15}")
    print(f"# load average {os.getloadavg()[0]:.1f} at the end; medians (p90) of {args.n} moves")


if __name__ == "__main__":
    main()
