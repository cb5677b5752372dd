"""Metrics on hand-made tunes whose answers are known by construction; sweeps and search."""

from __future__ import annotations

import json
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from toolkit import data, load_model
from toolkit import metrics as M
from toolkit.measure.sweep import search, summarise, sweep
from toolkit.music.tokens import encode


def tune(body: str, meter: str = "4/4", key: str = "C") -> list[str]:
    return encode(f"X:1\nM:{meter}\nL:1/8\nK:{key}\n{body}\n")


SCALE = tune("C D E F G A B c |]")  # eight eighths: one full bar of 4/4


def test_a_major_scale():
    notes = M.notes_of(SCALE, key="C")
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert M.pitch_range(notes) == 12
    assert M.n_pitches_used(notes) == 8 and M.n_pitch_classes_used(notes) == 7
    # C twice, six other classes once: H = -(2/8·log2(2/8) + 6·1/8·log2(1/8)) = 0.5 + 2.25
    assert M.pitch_class_entropy(notes) == pytest.approx(2.75)
    assert M.scale_consistency(notes) == 1.0
    assert M.empty_beat_rate(notes) == 0.0
    assert M.check_tokens(SCALE).ok


def test_display_key_moves_every_pitch():
    assert [n.pitch for n in M.notes_of(SCALE, key="D")][:2] == [62, 64]
    assert [n.pitch for n in M.notes_of(SCALE, key="G")][:2] == [55, 57]  # G the nearer way: down


def test_accidentals_last_to_the_bar_line_and_ties_merge():
    t = tune("^F F G2- G2 z2 | F4 z4 |]")
    notes = M.notes_of(t, key="C")
    assert [n.pitch for n in notes] == [66, 66, 67, 65]
    assert notes[2].duration == 2.0  # G2-G2 is one note of two quarters


def test_a_broken_bar_is_found_and_named():
    t = tune("C D E F G A B c | C D E F G A | C D E F G A B c |]")
    v = M.check_tokens(t)
    assert not v.ok and not v.bars_ok and v.bad_bars == [1]
    assert "bar 2" in v.problems[0]


def test_pickups_and_section_ends_may_be_short_but_never_long():
    assert M.check_tokens(tune("G2 |: c4 c4 | B4 A2 :| c2 |: d4 d4 | d6 :|")).ok
    too_long = tune("c4 c4 c |]")
    assert not M.check_tokens(too_long).bars_ok


def test_unbalanced_repeats_and_endings():
    assert not M.check_tokens(tune("|: C8 | D8 |: E8 | F8 :|")).repeats_ok
    assert not M.check_tokens(tune("|: C8 | D8 |")).repeats_ok
    assert M.check_tokens(tune("|: C8 |1 D8 :|2 E8 |]")).ok


def test_groove_and_empty_beats():
    steady = M.notes_of(tune("C2 D2 E2 F2 | G2 A2 B2 c2 |]"))
    assert M.groove_consistency(steady, 4.0) == 1.0
    mixed = M.notes_of(tune("C2 D2 E2 F2 | G8 |]"))
    # onset slots per bar: 4·12 = 48; bar 1 has 4 onsets, bar 2 has 1 at the same place -> 3 differ
    assert M.groove_consistency(mixed, 4.0) == pytest.approx(1 - 3 / 48)
    assert M.empty_beat_rate(M.notes_of(tune("C8 |]"))) == pytest.approx(0.75)


def test_repetition_inside_a_tune():
    t = tune("C D E F G A B c | C D E F G A B c | c B A G F E D C |]")
    assert M.repeated_bars(t) == pytest.approx(1 / 3)
    assert M.repeated_ngrams(SCALE, 4) == 0.0
    assert M.repeated_ngrams(t, 4) == pytest.approx(10 / 21)  # bar 1 = bar 2: five 4-grams twice


def test_diversity_across_a_batch():
    other = tune("E F G A B c d e |]")
    assert M.distinct_n([SCALE, SCALE], 4) == pytest.approx(0.5)
    assert M.distinct_n([SCALE, other], 4) == 1.0 or M.distinct_n([SCALE, other], 4) > 0.5
    assert M.mean_pairwise_similarity([SCALE, SCALE]) == 1.0
    assert M.mean_pairwise_similarity([SCALE, tune("c B A G F E D C |]")]) == 0.0


def test_instrument_ranges():
    low = M.notes_of(tune("C, D, E, F, G, A, B, C |]"), key="C")
    assert not M.fits_instrument(low, "fiddle")
    assert M.fits_instrument(M.notes_of(SCALE, key="D"), "fiddle")
    with pytest.raises(ValueError, match="instrument must be one of"):
        M.fits_instrument(low, "theremin")


def test_memorisation_finds_the_tune_a_copy_came_from():
    train = data.load("train")[:500]
    index = M.Memorisation(train)
    copy = train[123]["tokens"]
    source, copied = index.nearest(copy)
    assert source == train[123]["source"] and copied == 1.0
    assert index.nearest(tune("C D E F G A B c |]"))[1] < 0.5


def test_surprisal_from_logprobs():
    assert M.surprisal_bits([None, math.log(0.5), math.log(0.25)]) == pytest.approx([1.0, 2.0])
    assert M.tune_surprisal([None, math.log(0.5), math.log(0.25)]) == pytest.approx(1.5)


def test_tune_metrics_valid_flag_is_the_checkers_verdict():
    """A sweep's "valid" column says what check_tokens says, for good tunes and broken ones."""
    recs = data.load("valid")[:50]
    for r in recs:
        assert M.tune_metrics(r["tokens"])["valid"] == M.check_tokens(r["tokens"]).ok
    toks = list(recs[0]["tokens"])
    first_bar = next(i for i, t in enumerate(toks) if t == "|" and i > 6)
    broken = toks[:first_bar] + ["c", "4"] + toks[first_bar:]   # one bar made too long
    assert not M.check_tokens(broken).ok
    assert M.tune_metrics(broken)["valid"] is False


# --------------------------------------------------------------------------------------------
# sweeps

@pytest.fixture(scope="module")
def model():
    return load_model()


def test_sweep_writes_a_tidy_table_and_resumes(model, tmp_path):
    out = tmp_path / "sweep.jsonl"
    grid = {"temperature": [0.8, 1.5], "max_tokens": [40]}
    rows = sweep(model, grid, seeds=[1], n=3, out=out, progress=False)
    assert len(rows) == 2 and len(out.read_text().splitlines()) == 2
    for r in rows:
        assert {"temperature", "seed", "n", "valid", "distinct_4", "pitch_class_entropy",
                "seconds"} <= set(r)
    again = sweep(model, grid, seeds=[1, 2], n=3, out=out, progress=False)
    assert len(again) == 4 and len(out.read_text().splitlines()) == 4  # only new cells ran
    assert again[0] == rows[0] and json.loads(out.read_text().splitlines()[0]) == rows[0]


def test_sweep_through_an_executor_gives_the_same_rows(model):
    """A process pool stands in for a cluster engine (Dask's and Ray's executors work alike)."""
    grid = {"top_p": [0.9], "max_tokens": [30]}
    plain = sweep(model, grid, seeds=[4, 5], n=2, progress=False)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        pooled = sweep(model, grid, seeds=[4, 5], n=2, executor=ex, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(plain) == strip(pooled)


def test_sweep_rejects_bad_grids(model):
    with pytest.raises(ValueError, match="grid"):
        sweep(model, {}, progress=False)
    with pytest.raises(ValueError, match="unknown sweep parameter"):
        sweep(model, {"warmth": [1]}, n=1, progress=False)


def test_two_stage_search_refines_around_the_best(model):
    res = search(model, {"temperature": [0.5, 1.0, 2.0], "max_tokens": [30]},
                 objective="distinct_4", seeds=[0], n=2, points=1, progress=False)
    assert len(res.coarse) == 3 and res.fine
    coarse_best = max(summarise(res.coarse, ["temperature"], "distinct_4"),
                      key=lambda d: d["mean"])["temperature"]
    fine_ts = {r["temperature"] for r in res.fine}
    assert coarse_best in fine_ts and len(fine_ts) >= 2
    assert res.best is not None and "distinct_4" in res.best


def test_bad_bars_are_numbered_from_the_first_bar_with_notes():
    """A leading repeat sign opens bar 1; it is not a bar of its own."""
    from toolkit.measure.reference import check_abc_music21

    toks = ["<s>", "M:2/4", "K:maj", "S:?", "|:", "C", "D", "E", "F", "|", "G", "6", "|",
            "C", "4", ":|", "</s>"]
    assert M.check_tokens(toks).bad_bars == [1]
    abc = "X:1\nM:2/4\nL:1/8\nK:C\n|: CDEF | G6 | C4 :|\n"
    assert check_abc_music21(abc).bad_bars == [1]


def test_sweep_on_a_real_dask_cluster_gives_the_same_rows(model):
    """A class that outgrows one machine: the same sweep through a Dask cluster's executor."""
    import distributed
    grid = {"temperature": [0.9, 1.3], "max_tokens": [30]}
    plain = sweep(model, grid, seeds=[4], n=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = sweep(model, grid, seeds=[4], n=2, executor=client.get_executor(),
                        progress=False)
        assert len(client.scheduler_info()["workers"]) == 2
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(plain) == strip(on_dask)
