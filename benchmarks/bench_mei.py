"""Scores written as MEI from our own reading (toolkit.music.mei): how often they are needed,
and whether verovio reads back every note; and the corpus tunes left to music21: whether its
reading, checked against ours (toolkit.music.m21), holds the notes the tune plays.

    python benchmarks/bench_mei.py          # about a minute on 2 cores

Three sets of tunes:

* generated: 200 tunes at each of T = 0.5, 1, 1.5, 2 and 3 (seed 5, cut at 256 tokens);
* the corpus: every fifth tune of the five collections, as their ABC files hold them;
* notebook 10's scripted listener: the 40 tunes it rates while exploring the controls (the
  notebook's second cell), counted by the way each score was engraved.

For the first two, every tune our reader reads and the MEI writer takes is written as MEI,
loaded into verovio, and verovio's reading (its MEI) is checked against ours: the same notes,
ties joined, at the same times for as long (``render._mei_sounds``). The corpus tunes of one
voice that our MEI does not write (chords, grace notes, marks...) are read by music21 as the
score, MusicXML and MIDI are (``m21.music21_score``): counted as agreeing with our reading,
refused with the first difference named, or refused for another reason, with the time a tune
takes. Results go to benchmarks/results/mei.json.
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "mei.json"


def read_back(texts) -> dict:
    """For each ABC text: unreadable, not written (music21's), or written and read back."""
    from toolkit.music import render
    from toolkit.music.mei import mei
    from toolkit.music.reader import ABCError, parse_abc

    tk = render._verovio()
    counts: collections.Counter = collections.Counter()
    for text in texts:
        try:
            parsed = parse_abc(text)
        except ABCError:
            counts["ABC our reader refuses"] += 1
            continue
        written = mei(parsed)
        if written is None:
            counts["not written (chords, grace notes, slurs...: music21)"] += 1
            continue
        same = render._mei_sounds(render._reading(tk, written, "mei", 800), parsed)
        counts["written, verovio reads every note back" if same else
               "written, verovio reads it otherwise"] += 1
        counts["of which verovio's ABC reader takes the ABC"] += parsed.verovio_abc is not None
    return dict(counts)


def music21_readings(texts) -> dict:
    """For each one-voice tune our MEI does not write: does music21's reading, checked against
    ours, agree (or is it refused, and why)? And the median time ``music21_score`` takes."""
    from toolkit.music import m21
    from toolkit.music.mei import mei
    from toolkit.music.reader import ABCError, parse_abc

    counts: collections.Counter = collections.Counter()
    seconds = []
    for text in texts:
        try:
            parsed = parse_abc(text)
        except ABCError:
            continue
        if parsed.voices > 1 or mei(parsed) is not None:
            continue
        start = time.perf_counter()
        try:
            m21.music21_score(parsed)
            counts["music21 reads the notes the tune plays"] += 1
        except ABCError as err:
            counts["refused: music21 reads other notes" if "would not be the tune that plays"
                   in str(err) else "refused: music21 cannot read it"] += 1
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return {**counts, "median ms a tune": round(1000 * seconds[len(seconds) // 2], 1)}


def listener_ways() -> dict:
    """The way each score went in notebook 10's scripted listening session."""
    from toolkit import load_model
    from toolkit.lessons.rating_studio import RatingStudio
    from toolkit.measure.listeners import LISTENERS
    from toolkit.music import render

    ways: collections.Counter = collections.Counter()
    engrave = render.engrave

    def counted(parsed, **kwargs):
        svg, way = engrave(parsed, **kwargs)
        ways[way] += 1
        return svg, way

    render.engrave = counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            studio = RatingStudio(load_model(), log=Path(tmp) / "session.jsonl",
                                  settings={"temperature": 0.9})
            studio.rate_with(LISTENERS[0], 40, explore=True, seed=0)
    finally:
        render.engrave = engrave
    return {"ways": dict(ways), "music21 imported": "music21" in sys.modules}


def main() -> None:
    from toolkit import data, generate, load_model

    t0 = time.perf_counter()
    model = load_model()
    generated = [t.abc for temperature in (0.5, 1.0, 1.5, 2.0, 3.0)
                 for t in generate(model, n=200, seed=5, temperature=temperature,
                                   max_tokens=256)]
    results = {"generated": read_back(generated),
               "notebook 10's listener": listener_ways()}
    corpus = [text for i, (_, _, text) in enumerate(data.iter_corpus()) if i % 5 == 0]
    results["corpus (every fifth tune)"] = read_back(corpus)
    results["corpus left to music21 (every fifth tune, one voice)"] = music21_readings(corpus)
    for name, counts in results.items():
        print(f"{name}:")
        for key, value in counts.items():
            print(f"  {key}: {value}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
