"""Shaping and steering: schedules apply the intended temperature at the intended bars, the
style classifier and the guidance/constraint measurements, and the steering studio's errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit import generate, load_model
from toolkit import sampling as S
from toolkit.lessons.shaping import (
    ScheduleExplorer,
    plot_temperature_trace,
    schedule_chain,
    section_surprisal,
    trace_temperature,
)
from toolkit.lessons.steering_studio import SteeringStudio
from toolkit.measure.steering import (
    StyleClassifier,
    markdown_table,
    measure_constraint,
    measure_guidance,
)


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_section_schedule_applies_each_temperature_in_its_bars(model):
    arc = S.temperature_by_section([(0, 4, 0.5), (4, 8, 1.7)], default=0.9)
    trace = trace_temperature(model, arc, n=6, seed=4, meter="6/8", mode="maj")
    checked = 0
    for i in range(len(trace)):
        notes = trace.notes(i)
        expected = np.select([notes["bar"] < 4, notes["bar"] < 8], [0.5, 1.7], 0.9)
        assert np.allclose(notes["temperature"], expected)
        checked += len(expected)
    assert checked > 100


def test_bar_schedule_and_a_function_of_position(model):
    ramp = S.temperature_by_bar([0.4, 0.8, 1.2, 1.6])          # bar 4 on keeps 1.6
    trace = trace_temperature(model, ramp, n=3, seed=2, meter="4/4")
    for i in range(3):
        notes = trace.notes(i)
        assert np.allclose(notes["temperature"], np.array([0.4, 0.8, 1.2, 1.6])[
            np.minimum(notes["bar"], 3)])
    odd_bars_hot = S.temperature_schedule(
        lambda step, bar: torch.where(bar % 2 == 1, 1.5, 0.7).double())
    notes = trace_temperature(model, odd_bars_hot, n=2, seed=1, meter="3/4").notes(1)
    assert np.allclose(notes["temperature"], np.where(notes["bar"] % 2 == 1, 1.5, 0.7))


def test_dynamic_temperature_stays_in_its_range_and_varies(model):
    trace = trace_temperature(model, S.dynamic_temperature(0.5, 1.5), n=2, seed=3)
    temps = trace.notes(0)["temperature"]
    assert temps.min() >= 0.5 - 1e-9 and temps.max() <= 1.5 + 1e-9
    assert temps.std() > 0.01


def test_hot_middle_section_draws_more_surprising_notes(model):
    arc = S.temperature_by_section([(0, 4, 0.4), (4, 12, 2.0), (12, None, 0.4)])
    rows = section_surprisal(trace_temperature(model, arc, n=24, seed=0, meter="6/8"))
    assert [r["bars"] for r in rows] == ["1–4", "5–12", "13–end"]
    assert rows[1]["surprisal_bits"] > rows[0]["surprisal_bits"] + 0.5


def test_trace_plot_draws_one_point_per_note(model):
    trace = trace_temperature(model, schedule_chain("arc: calm · bold · calm", 0.6, 1.4), n=2,
                              seed=5)
    plot = plot_temperature_trace(trace, 0)
    assert len(plot.line.get_xdata()) == len(trace.notes(0)["temperature"])
    plot.update(trace, 1, draw=False)
    assert len(plot.dots.get_offsets()) == len(trace.notes(1)["temperature"])
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule_chain("zigzag", 0.5, 1.0)


def test_schedule_explorer_updates_and_reports(model):
    app = ScheduleExplorer(model, seed=2)
    assert "✅" in app.status.value and "<svg" in app.score.value
    app.schedule.value = "dynamic (entropy)"
    assert "✅" in app.status.value and app.trace.tunes[0].settings["seed"] == 2


def test_style_classifier_learns_and_refuses_bad_input():
    recs = [{"tokens": ["<s>", "M:6/8", "K:maj", "S:irish", *"d e f g a".split(), "</s>"],
             "style": "irish"},
            {"tokens": ["<s>", "M:2/4", "K:maj", "S:german", *"C C G G E".split(), "</s>"],
             "style": "german"}]
    clf = StyleClassifier().fit(recs)
    assert clf.predict(["<s>", "M:?", "K:?", "S:irish", "C", "C", "G", "</s>"]) == "german"
    assert clf.accuracy(recs) == 1.0
    with pytest.raises(ValueError, match="at least two styles"):
        StyleClassifier().fit(recs[:1])
    with pytest.raises(ValueError, match="not trained"):
        StyleClassifier().predict(recs[0]["tokens"])


def test_guidance_one_is_plain_conditioning_and_rows_are_complete(model):
    plain = generate(model, n=3, seed=9, style="chinese", max_tokens=64)
    same = generate(model, n=3, seed=9, style="chinese", guidance=1.0, max_tokens=64)
    assert [t.tokens for t in plain] == [t.tokens for t in same]
    recs = [{"tokens": t.tokens, "style": s} for s in ("irish", "chinese")
            for t in generate(model, n=6, seed=1, style=s, max_tokens=80)]
    clf = StyleClassifier().fit(recs)
    rows = measure_guidance(model, clf, scales=(0, 2), styles=["irish", "chinese"], n=4)
    assert [r["guidance"] for r in rows] == [0, 2]
    for r in rows:
        assert 0 <= r["style_accuracy"] <= 1 and 0 <= r["valid"] <= 1 and r["tunes"] == 8
        assert set(r["per_style"]) == {"irish", "chinese"}
    table = markdown_table(rows, [("guidance", "scale", "g"), ("valid", "valid", ".0%")])
    assert table.splitlines()[0] == "| scale | valid |"


def test_meter_constraint_completes_every_bar_at_high_temperature(model):
    (row,) = measure_constraint(model, temperatures=(3.0,), n=24, seed=2)
    assert row["bars_ok_constrained"] == 1.0
    assert row["bars_ok_free"] < 1.0


def test_steering_studio_shows_errors_and_recovers(model):
    app = SteeringStudio(model, seed=3)
    assert "✅" in app.status.value
    app.prime.value = "|: d2e f^^gd |"
    assert "⚠️" in app.status.value and "^^g" in app.status.value \
        and "column 9" in app.status.value
    app.prime.value = "|: d2e fed |"
    assert "✅" in app.status.value
    app.style.value = None
    app.guidance.value = 3
    assert "⚠️" in app.status.value and "style" in app.status.value
    app.style.value = "irish"
    assert "✅" in app.status.value and app.tune.settings["guidance"] == 3
