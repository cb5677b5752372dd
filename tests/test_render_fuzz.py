"""No render or export hangs or crashes, whatever the tune: generated at any temperature, cut
off mid-bar by a small ``max_tokens``, or a corpus tune mangled as a student might mangle it.
Every call either returns or raises the project's ABCError (a ValueError) with a reason, within a
per-call time limit."""

from __future__ import annotations

import random
import signal
import time
from contextlib import contextmanager

import pytest

from toolkit import data, generate, load_model
from toolkit import sampling as S
from toolkit.music import m21
from toolkit.music.reader import ABCError
from toolkit.music.tokens import decode
from toolkit.music.tune import Tune

pytestmark = pytest.mark.slow
LIMIT_S = 10  # per call; a 256-token tune takes well under 1 s (benchmarks/bench_render.py)


@contextmanager
def time_limit(seconds: float):
    def fail(*_):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _render(abc: str, every_format: bool) -> str:
    """'ok', or 'refused: ...' for the documented error; anything else fails the test."""
    with time_limit(LIMIT_S):
        try:
            tune = Tune.from_abc(abc)
            tune.svg()
            if every_format:
                from toolkit.music import audio

                m21.musicxml(tune.score)
                m21.midi(tune.score)
                audio.wav(tune)
            return "ok"
        except ABCError as err:
            assert str(err), "an ABCError must say why"
            if "TimeoutError" in str(err):           # music21's own except clauses wrap it
                raise TimeoutError(str(err)) from err
            return "refused"


def _generated(n_per: int) -> list[str]:
    model = load_model()
    texts = []
    meters = [m[2:] for m in model.vocab if m.startswith("M:") and m != "M:?"]
    rng = random.Random(0)
    for i, temp in enumerate((0.5, 1.0, 2.0, 3.0, 5.0)):
        for j, meter in enumerate(meters):
            tunes = generate(model, n=n_per, seed=100 * i + j, meter=meter,
                             max_tokens=rng.choice((24, 48, 96, 256)),
                             sampler=S.chain(S.temperature(temp)))
            texts += [t.abc for t in tunes]
    return texts


def _mutated(n: int) -> list[str]:
    rng = random.Random(1)
    recs = data.load("test")
    out = []
    for _ in range(n):
        text = decode(rng.choice(recs)["tokens"])
        head, body = text.split("\nK:", 1)
        k, _, notes = body.partition("\n")
        cut = rng.randrange(len(notes) + 1)
        kind = rng.randrange(4)
        if kind == 0:                                   # bar lines removed: one long bar
            notes = notes.replace("|", "", rng.randrange(1, 40))
        elif kind == 1:                                 # cut off anywhere
            notes = notes[:cut]
        elif kind == 2:                                 # a stray symbol
            notes = notes[:cut] + rng.choice(["(3", "-", ">", "[1", ":|", "/", "z16", "^^"]) \
                + notes[cut:]
        else:                                           # a lump of short notes pasted in
            notes = notes[:cut] + "".join(rng.choice("ABCDEFG") + rng.choice(["/2", "/4", "3/2"])
                                          for _ in range(rng.randrange(5, 60))) + notes[cut:]
        out.append(f"{head}\nK:{k}\n{notes}")
    return out


def test_a_thousand_tunes_render_or_say_why():
    texts = _generated(n_per=16) + _mutated(400)
    assert len(texts) >= 1000
    outcomes, slowest = {}, 0.0
    for i, abc in enumerate(texts):
        t0 = time.perf_counter()
        outcome = _render(abc, every_format=i % 10 == 0)
        slowest = max(slowest, time.perf_counter() - t0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"{len(texts)} tunes: {outcomes}; slowest call {slowest:.2f} s")
    assert outcomes.get("ok", 0) > len(texts) // 2     # most tunes render
    assert slowest < LIMIT_S
