"""Time to engrave (SVG) and play (WAV) a 32-bar tune: what a new tune costs before it shows.

The tune is a four-part reel of 32 bars (plus two pickups and four second endings), written
the way the generator writes tunes (L:1/8, beams by beat, four bars a line); with its repeats
it plays for about two minutes at 1/4=120. For each step the median wall and CPU time of
several runs is printed, each run on a fresh :class:`Tune` (so the ABC is read every time):

* ``svg``   -- ``Tune.from_abc(text).svg()``: reading, verovio (ABC in, MEI with the repeats and
  endings back in), SVG out;
* ``wav``   -- ``Tune.from_abc(text).wav()``: reading, the repeats, the plucked string, WAV
  bytes; "warm" once every pitch's pluck is computed (kept for the kernel's life), "cold"
  with the pluck cache emptied before each run (the first tune in a kernel);
* ``html``  -- ``_repr_html_()``: score, sound, base64, as Jupyter shows a tune;
* ``svg`` of the reel with one note five eighths long (no single note shows it, so verovio's
  ABC reader cannot take the tune): written as MEI from our own reading (``toolkit.music.mei``),
  checked as verovio reads it back, engraved -- the way a hot generated tune goes;
* for comparison: music21 reading the same ABC, and the slower engraving path through music21
  and MusicXML that rich ABC (chords, grace notes) takes.

Run:  .venv/bin/python benchmarks/bench_render.py     (about a minute; 2 threads)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit import audio, render  # noqa: E402
from toolkit.music.tune import Tune  # noqa: E402

REEL = (Path(__file__).parent / "data" / "reel_32_bars.abc").read_text()  # 32 bars, 2 endings
# the same tune with a grace note and a chord: verovio's ABC reader cannot take it
RICH = REEL.replace("|GABG EDEG|", "|{A}GABG [EG]DEG|", 1)
# ... and with a note five eighths long, which verovio's ABC reader cannot take either
LONG = REEL.replace("|GABG EDEG|", "|G5 z3|", 1)


def median_ms(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None,
              ) -> tuple[float, float]:
    """Median wall time and median CPU time of ``fn`` in ms over ``runs`` runs (``setup``
    untimed before each). On a busy machine the CPU time is the fairer figure."""
    walls, cpus = [], []
    for _ in range(runs):
        if setup is not None:
            setup()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


def main() -> None:
    try:
        import torch

        torch.set_num_threads(2)
        torch_note = f"torch {torch.__version__}, torch.set_num_threads(2)"
    except ImportError:
        torch_note = "torch not installed"
    import music21
    import numpy
    import verovio

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}, "
          f"numpy {numpy.__version__}, verovio {verovio.toolkit(False).getVersion()}, "
          f"music21 {music21.__version__}, {torch_note}; numpy threads 2")
    tune = Tune.from_abc(REEL)
    played = tune.performance()
    print(f"tune: {len(tune.parsed.measures)} written bars, {len(tune.notes)} notes; "
          f"played with repeats: {played.length / 4:g} bars of 4/4, "
          f"{audio.duration(tune.wav()):.1f} s at 1/4=120")

    # warm-up: imports, verovio's fonts, numpy's FFT plans
    tune.svg()
    tune.wav()
    runs = 15
    svg = median_ms(lambda: Tune.from_abc(REEL).svg(), runs)
    read = median_ms(lambda: Tune.from_abc(REEL), runs)
    wav_warm = median_ms(lambda: Tune.from_abc(REEL).wav(), runs)
    wav_cold = median_ms(lambda: Tune.from_abc(REEL).wav(), runs, setup=audio.pluck.cache_clear)
    html = median_ms(lambda: Tune.from_abc(REEL)._repr_html_(), runs)
    both = median_ms(lambda: (lambda t: (t.svg(), t.wav()))(Tune.from_abc(REEL)), runs)
    colour_tokens = ["z"] * sum(len(e.pitches) or 1 for e in tune.parsed.events)
    coloured = Tune(abc=REEL, tokens=colour_tokens, logprobs=[-0.5] * len(colour_tokens))
    coloured.svg(color_by_surprisal=True)
    colour = median_ms(lambda: coloured.svg(color_by_surprisal=True), runs)

    long_svg = median_ms(lambda: render.engrave(Tune.from_abc(LONG).parsed), runs)
    long_way = render.engrave(Tune.from_abc(LONG).parsed)[1]
    m21 = median_ms(lambda: music21.converter.parse(REEL, format="abc", forceSource=True), 5)
    rich_tune = Tune.from_abc(RICH)
    rich_svg = median_ms(lambda: (lambda t: render.engrave(t.parsed, score=lambda: t.score))(
        Tune.from_abc(RICH)), 5)
    way = render.engrave(rich_tune.parsed, score=lambda: rich_tune.score)[1]

    print()
    print(f"{'step (32-bar reel, median of ' + str(runs) + ' runs)':<58} {'wall ms':>8} "
          f"{'CPU ms':>8}")
    for label, value in [
        ("read the ABC (Tune.from_abc)", read),
        ("svg(): read + engrave with verovio", svg),
        ("wav(): read + play with repeats, plucks cached (warm)", wav_warm),
        ("wav(): the same, pluck cache emptied (cold, first tune)", wav_cold),
        ("svg() + wav(), warm  [target <= 100 ms]", both),
        ("_repr_html_(): score + sound + base64, warm", html),
        ("svg(color_by_surprisal=True), the same Tune (read once)", colour),
        (f"svg() of the reel with a note 5/8 long: via {long_way}", long_svg),
        ("for comparison: music21 parsing the same ABC (median of 5)", m21),
        (f"for comparison: rich ABC, engraved via {way} (median of 5)", rich_svg),
    ]:
        print(f"{label:<58} {value[0]:>8.1f} {value[1]:>8.1f}")


if __name__ == "__main__":
    main()
