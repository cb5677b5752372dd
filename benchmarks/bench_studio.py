"""What the tune studio costs, as a student feels it.

    python benchmarks/bench_studio.py              # everything (about two minutes on 2 cores)
    python benchmarks/bench_studio.py --part update

Parts:

* ``update`` -- the in-kernel cost of one "new tune" update: set ``studio.seed.value`` and
  wait until the status line, the score (SVG) and the play button (WAV in an ``<audio>``) are
  all new. Median over several seeds, with the parts (generation, SVG, WAV) timed apart.
  Target (GUIDE.md): <= 250 ms on 2 cores.
* ``step`` -- one move of the step-through slider (the plot redrawn, the partial score
  engraved). Target for a plot: <= 30 ms.
* ``rating`` -- the rating studio (notebook 10): a 👍 click until the next tune is shown (target
  as for ``update``), "🧠 learn" after 40 ratings, "🎯 one for me" (best of 8).
* ``first`` -- time to first tune: from starting a fresh Jupyter kernel to the first cell of
  ``notebooks/00_start_here.ipynb`` having shown its tune (score and play button); then the
  same code in a fresh process, part by part, at torch's default thread count and at one
  thread. Target: <= 10 s.
* ``memory`` -- each studio notebook run top to bottom in a fresh kernel: wall time and the
  kernel's peak resident memory (``VmHWM``). Target: < 1 GB.

The machine's load average is printed before and after: on a machine that is busy with
something else (a training run) every wall-clock figure here is slower. The ``cpu`` figures
(process time) are what the work itself costs, close to its wall time on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["notebooks/00_start_here.ipynb", "notebooks/03_tune_studio.ipynb"]


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def bench_update(seeds: range) -> dict:
    """One studio update (generation + SVG + WAV + HTML) per seed, and its parts."""
    import torch

    from toolkit import load_model
    from toolkit import studio as st

    model = load_model()
    studio = st.TuneStudio(model)               # default settings; the first tune warms up
    totals, cpus, gens, svgs, wavs, tokens = [], [], [], [], [], []
    for seed in seeds:
        t0, c0 = time.perf_counter(), time.process_time()
        studio.seed.value = seed
        totals.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        assert "✅" in studio.status.value, studio.status.value
        tokens.append(len(studio.tune.tokens))
        # the parts, again for the same settings
        t0 = time.perf_counter()
        tune = st.new_tune(model, studio.settings)
        gens.append(time.perf_counter() - t0)
        if st.observations(tune)["reads"]:  # an unreadable tune fails at once: not timed
            for part, out in (("svg", svgs), ("wav", wavs)):
                t0 = time.perf_counter()
                getattr(tune, part)()
                out.append(time.perf_counter() - t0)
    readable = sum("<audio" in st.tune_html(st.new_tune(model, studio.settings.replace(seed=s)),
                                            audio=True)
                   for s in seeds)
    return {
        "settings": studio.settings.label(),
        "torch_threads_outside_the_studio": torch.get_num_threads(),
        "seeds": len(seeds),
        "update_ms_median": _ms(statistics.median(totals)),
        "update_ms_min": _ms(min(totals)),
        "update_ms_max": _ms(max(totals)),
        "update_cpu_ms_median": _ms(statistics.median(cpus)),
        "generation_ms_median": _ms(statistics.median(gens)),
        "svg_ms_median_readable_tunes": _ms(statistics.median(svgs)) if svgs else None,
        "wav_ms_median_readable_tunes": _ms(statistics.median(wavs)) if wavs else None,
        "tokens_median": statistics.median(tokens),
        "tunes_with_score_and_audio": f"{readable}/{len(seeds)}",
    }


def bench_rating(clicks: int = 11) -> dict:
    """The rating studio (notebook 10): one 👍 click until the next tune is shown, one
    "🧠 learn" after 40 scripted ratings, and one "🎯 one for me" (best of 8). Medians."""
    import tempfile

    import torch

    from toolkit import load_model
    from toolkit.lessons.rating_studio import RatingStudio
    from toolkit.measure.listeners import LISTENERS

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    studio = RatingStudio(load_model(), Path(tempfile.mkdtemp()) / "bench.jsonl")
    studio.rate_with(LISTENERS[0], 40, explore=True, seed=0)
    like = []
    for _ in range(clicks):
        t0 = time.perf_counter()
        studio.like.click()                      # logs, writes and engraves the next tune
        like.append(time.perf_counter() - t0)
    learn = []
    for _ in range(3):
        t0 = time.perf_counter()
        studio.learn.click()
        learn.append(time.perf_counter() - t0)
    steer = []
    for seed in range(5):
        studio.studio.seed.value = 500 + seed
        t0 = time.perf_counter()
        studio.steer.click()
        steer.append(time.perf_counter() - t0)
    events = len(studio.session.events())
    return {"like_click_ms": _ms(statistics.median(like)),
            "learn_s_after_40_ratings": round(statistics.median(learn), 2),
            "events_in_log": events, "steer_best_of_8_ms": _ms(statistics.median(steer))}


def bench_step(moves: int = 20) -> dict:
    """Moves of the step-through slider over one recorded 256-token tune."""
    from toolkit import load_model
    from toolkit import studio as st

    model = load_model()
    for seed in range(1, 100):  # a long tune: the first seed whose tune runs 100 steps or more
        t0 = time.perf_counter()
        rec = st.record(model, {"seed": seed, "meter": "4/4", "mode": "maj"})
        record_s = time.perf_counter() - t0
        if len(rec) >= 100:
            break
    view = st.StepThrough(rec)
    n = len(rec)
    for i in range(1, n + 1):   # explain every step once, as a student scrubbing would
        rec.step(i - 1)
    times, cpus, plot_times = [], [], []
    positions = [1 + (7 * k) % n for k in range(1, moves + 1)]
    for pos in positions:
        t0, c0 = time.perf_counter(), time.process_time()
        view.step.value = pos
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        t0 = time.perf_counter()
        view.plot.update(rec.step(pos - 1), draw=False)   # the plot alone: artists moved,
        view.view.refresh()                               # then drawn (PNG or ipympl canvas)
        plot_times.append(time.perf_counter() - t0)
    return {"steps_recorded": n, "record_ms": _ms(record_s),
            "slider_move_ms_median": _ms(statistics.median(times)),
            "slider_move_cpu_ms_median": _ms(statistics.median(cpus)),
            "plot_redraw_ms_median": _ms(statistics.median(plot_times))}


_FIRST_CELL = '''
import json, sys, time
t0 = time.perf_counter()
import torch
if sys.argv[1] != "default":
    torch.set_num_threads(int(sys.argv[1]))
from toolkit import generate, load_model
t1 = time.perf_counter()
model = load_model()
t2 = time.perf_counter()
tune = generate(model, meter="6/8", mode="maj", style="irish", seed=7)[0]
t3 = time.perf_counter()
page = tune._repr_html_()
t4 = time.perf_counter()
print(json.dumps({"torch_threads": torch.get_num_threads(), "import_s": round(t1 - t0, 2),
                  "load_s": round(t2 - t1, 2), "generate_s": round(t3 - t2, 2),
                  "tokens": len(tune.tokens), "score_and_audio_s": round(t4 - t3, 2),
                  "total_s": round(t4 - t0, 2), "audio": "<audio" in page}))
'''


def bench_first_cell_parts() -> list[dict]:
    """The first cell of notebook 00 in a fresh Python process, timed part by part, with
    torch's default thread count and with one thread."""
    import subprocess

    out = []
    for threads in ("default", "1"):
        run = subprocess.run([sys.executable, "-c", _FIRST_CELL, threads], capture_output=True,
                             text=True, check=True, cwd=ROOT / "notebooks")
        out.append(json.loads(run.stdout.strip().splitlines()[-1]))
    return out


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_in_fresh_kernel(path: Path, first_only: bool = False) -> dict:
    """Start a kernel in the notebook's folder, run its code cells, time them, read its memory."""
    from jupyter_client.manager import start_new_kernel

    cells = _code_cells(path)
    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(path.parent))
    started = time.perf_counter() - t0
    outputs: list[dict] = []
    try:
        first = None
        for i, code in enumerate(cells[:1] if first_only else cells):
            reply = kc.execute_interactive(code, timeout=300, output_hook=outputs.append)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"{path.name} cell {i + 1} failed: {reply['content']}")
            if i == 0:
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        pid = km.provisioner.process.pid
        peak = _peak_rss_mb(pid)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    shown = any("<audio" in str(m.get("content", {}).get("data", {}).get("text/html", ""))
                for m in outputs)
    return {"kernel_start_s": round(started, 2), "first_cell_done_s": round(first, 2),
            "all_cells_s": round(total, 2), "peak_rss_mb": round(peak),
            "audio_shown": shown}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["update", "step", "rating", "first", "memory", "all"],
                   default="all")
    p.add_argument("--seeds", type=int, default=11, help="seeds for the update median")
    args = p.parse_args(argv)
    os.chdir(ROOT)
    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
                   f"{platform.python_version()}",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    parts = ["update", "step", "rating", "first", "memory"] if args.part == "all" \
        else [args.part]
    if "update" in parts:
        result["update"] = bench_update(range(100, 100 + args.seeds))  # not the default seed
    if "step" in parts:
        result["step"] = bench_step()
    if "rating" in parts:
        result["rating"] = bench_rating()
    if "first" in parts:
        result["first_tune"] = run_in_fresh_kernel(ROOT / NOTEBOOKS[0], first_only=True)
        result["first_cell_parts"] = bench_first_cell_parts()
    if "memory" in parts:
        result["notebooks"] = {nb: run_in_fresh_kernel(ROOT / nb) for nb in NOTEBOOKS
                               if (ROOT / nb).exists()}
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
    print()
    return result


if __name__ == "__main__":
    main()
