"""Learning what a listener likes: the interaction log (schema, broken lines, a class's merged
logs), the reward and history models (fallbacks, what they learn, files), steering (mixtures
through guidance, best of N), the rating session and studio, the simulated listeners and the
CLI."""

from __future__ import annotations

import json
import string
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import generate, load_model
from toolkit.cli import main as cli
from toolkit.lessons import plots
from toolkit.lessons.rating_studio import RatingStudio
from toolkit.measure.interactions import (
    EventLog,
    check_event,
    judgements,
    read_events,
    sessions,
    tune_id,
)
from toolkit.measure.listeners import (
    LISTENERS,
    Listener,
    explore_settings,
    learning_curve,
    shuffled,
)
from toolkit.measure.preferences import (
    MIN_LIKED,
    MIN_RATINGS,
    HistoryModel,
    Preferences,
    RewardModel,
    feature_names,
    tune_features,
)
from toolkit.measure.rating import RatingSession

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENS = ["<s>", "M:6/8", "K:min", "S:irish", "A", "B", "c", "|", "</s>"]


@pytest.fixture(scope="module")
def model():
    return load_model()


def _minor_only(tokens, settings, n):
    return 1.0 if tokens[2] == "K:min" else 0.0


MINOR = Listener("minor only", "likes exactly the minor tunes", _minor_only)


@pytest.fixture(scope="module")
def minor_log(model, tmp_path_factory):
    """A listener who likes exactly the minor tunes: 24 tunes from exploration settings, every
    fourth with the mode menu on minor."""
    path = tmp_path_factory.mktemp("log") / "minor.jsonl"
    session = RatingSession(model, path, session="test")
    rng = np.random.default_rng(3)
    for i in range(24):
        tune = session.write(**{**explore_settings(model, rng), **({"mode": "min"} if i % 4 == 0
                                                                  else {})})
        session.rate(+1 if MINOR.likes(tune, rng, i) else -1)
    return path


# -- the log ------------------------------------------------------------------------------

def test_a_log_round_trips_and_names_no_one(tmp_path):
    log = EventLog(tmp_path / "sub" / "me.jsonl")
    tid = log.tune(TOKENS, {"temperature": 0.8, "mode": "min"})
    log.settings("temperature", 1.0, 0.8)
    log.play(tid)
    log.rate(tid, 4, stars=True)
    log.keep(tid)
    events = read_events(tmp_path / "sub" / "me.jsonl")
    assert [e["type"] for e in events] == ["tune", "settings", "play", "rate", "keep"]
    assert {e["session"] for e in events} == {log.session} and len(log.session) == 8
    assert all(e["time"].endswith("Z") for e in events)
    assert events[0]["tokens"] == TOKENS and events[0]["tune"] == tid == tune_id(TOKENS)
    assert set(events[0]) == {"v", "time", "session", "type", "tune", "tokens", "settings",
                              "steered"}


def test_a_broken_line_is_named_and_the_other_events_are_read(tmp_path):
    log = EventLog(tmp_path / "a.jsonl")
    tid = log.tune(TOKENS, {})
    with open(log.path, "a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"v": 1, "time": "t", "session": "x", "type": "dance"}) + "\n")
        f.write(json.dumps({"v": 1, "time": "t", "session": "x", "type": "rate", "tune": tid,
                            "rating": 7}) + "\n")
    log.rate(tid, -1)
    with pytest.warns(UserWarning, match="3 log line"):
        events = read_events(log.path)
    assert [e["type"] for e in events] == ["tune", "rate"]
    assert [p.split(":")[1] for p in events.problems] == ["2", "3", "4"]
    assert "not JSON" in events.problems[0]
    assert "unknown event type 'dance'" in events.problems[1]
    assert "rating must be +1 or -1" in events.problems[2]


def test_a_class_merges_its_logs_by_folder(tmp_path):
    for name in ("ana", "ben"):
        log = EventLog(tmp_path / f"{name}.jsonl")
        tid = log.tune([*TOKENS[:4], name[0].upper(), "</s>"], {})
        log.rate(tid, +1)
    (tmp_path / "notes.txt").write_text("not a log")
    events = read_events(tmp_path)
    assert len(events) == 4 and len(sessions(events)) == 2
    assert len(judgements(events)) == 2


def test_the_last_judgement_of_a_tune_counts(tmp_path):
    log = EventLog(tmp_path / "a.jsonl")
    a = log.tune(TOKENS, {})
    b = log.tune([*TOKENS[:4], "G", "</s>"], {})
    log.rate(a, +1)
    log.skip(b)
    log.rate(a, 2, stars=True)       # changed their mind: 2 stars is a dislike
    log.rate(b, 3, stars=True)       # 3 stars: no judgement, the skip stands
    js = judgements(read_events(log.path))
    assert [(j.tune, j.liked) for j in js] == [(b, False), (a, False)]


def test_bad_arguments_to_the_log_are_clear(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        EventLog(tmp_path)
    with pytest.raises(FileNotFoundError, match="no log at"):
        read_events(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="unknown schema version"):
        check_event({"v": 2, "type": "play"})


EVENT = st.one_of(
    st.builds(lambda n, o, v: ("settings", {"name": n, "old": o, "new": v}),
              st.sampled_from(["temperature", "mode", "seed"]),
              st.one_of(st.none(), st.floats(0, 3), st.text(max_size=5)),
              st.one_of(st.integers(0, 999), st.floats(0, 3), st.text(max_size=5))),
    st.builds(lambda r: ("rate", {"tune": "abc", "rating": r}), st.sampled_from([-1, 1])),
    st.builds(lambda k: (k, {"tune": "abc"}), st.sampled_from(["play", "keep", "skip"])),
    st.builds(lambda toks: ("tune", {"tune": tune_id(toks), "tokens": toks, "settings": {}}),
              st.lists(st.text(string.printable, min_size=1, max_size=4), max_size=6)),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, max_size=12), junk=st.lists(st.text(max_size=30), max_size=4))
def test_any_events_round_trip_and_junk_lines_never_stop_the_reader(tmp_path, events, junk):
    path = tmp_path / "prop.jsonl"
    path.unlink(missing_ok=True)
    log = EventLog(path, session="p")
    for kind, fields in events:
        log.write(kind, **fields)
    with open(path, "a") as f:
        for line in junk:
            f.write(line.replace("\n", " ").replace("\r", " ") + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_events(path)
    assert [(e["type"], {k: e[k] for k in f}) for e, (_, f) in
            zip(back[:len(events)], events, strict=False)] == events
    assert len(back) + len(back.problems) >= len(events)
    assert all(p.startswith(f"{path}:") for p in back.problems)


# -- the reward model ---------------------------------------------------------------------

def test_the_reward_model_steps_aside_without_enough_ratings():
    r = RewardModel(["a", "b"])
    X = np.eye(2)[[0, 1, 0, 1, 0]]
    r.fit(X, [True, False, True, False, True])           # 5 < MIN_RATINGS
    assert not r.ready and MIN_RATINGS == 6
    assert np.allclose(r.p_like(X), 0.5)
    r.fit(np.vstack([X, X]), [True] * 10)                # only likes
    assert not r.ready and np.allclose(r.p_like(X), 0.5)


def test_the_reward_model_learns_a_feature_and_is_surer_with_more_ratings():
    rng = np.random.default_rng(0)
    names = ["minor", "noise"]
    X = np.column_stack([rng.integers(0, 2, 40), rng.random(40)])
    liked = X[:, 0] == 1
    few = RewardModel(names, half_life=1e6).fit(X[:8], liked[:8])
    many = RewardModel(names, half_life=1e6).fit(X, liked)
    assert many.ready and list(many.weights())[0] == "minor" and many.weights()["minor"] > 2
    assert many.p_like([[1, 0.5]])[0] > 0.75 > 0.25 > many.p_like([[0, 0.5]])[0]
    recent = RewardModel(names).fit(X, liked)        # half-life 8: fewer ratings really count
    assert 0.5 < recent.p_like([[1, 0.5]])[0] < many.p_like([[1, 0.5]])[0]
    assert many.uncertainty([[1, 0.5]])[0] < few.uncertainty([[1, 0.5]])[0]
    with pytest.raises(ValueError, match="half_life must be > 0"):
        RewardModel(names, half_life=0)
    with pytest.raises(ValueError, match=r"X must be \(n, 2\)"):
        many.fit(np.ones((3, 5)), [True] * 3)


# -- the history model and the preferences --------------------------------------------------

def test_preferences_learn_a_minor_lover_and_steer_towards_minor(model, minor_log):
    events = read_events(minor_log)
    prefs = Preferences.fit(events, model)
    assert prefs.ready == {"reward": True, "history": True}
    assert prefs.prediction.top("mode") == "min"
    assert prefs.suggest()["mode"] == "min"
    assert prefs.reward.weights()["mode min"] > 0.5
    steered = prefs.generate(model, 12, N=4, seed=2)
    minor = sum(t.tokens[2] == "K:min" for t in steered)
    plain = sum(t.tokens[2] == "K:min" for t in generate(model, n=12, seed=2))
    assert minor >= 9 > plain, (minor, plain)
    info = steered[0].settings["prefs"]
    assert info["of"] == 4 and 1 <= info["rank"] <= 4 and info["steered_by"] == ["reward",
                                                                                   "history"]


def test_the_history_model_says_nothing_below_its_minimum_of_likes(model, tmp_path):
    log = EventLog(tmp_path / "few.jsonl")
    for i in range(MIN_LIKED - 1):
        log.rate(log.tune([*TOKENS[:4], "ABCDEFG"[i], "</s>"], {}), +1)
    prefs = Preferences.fit(read_events(log.path), model)
    assert not prefs.prediction.sure and prefs.suggest() == {}
    assert prefs.mixture() == {"meter": None, "mode": None, "style": None}
    tunes = prefs.generate(model, 2, N=3, seed=1)        # the plain model, one candidate each
    assert all(t.settings["prefs"]["steered_by"] == [] for t in tunes)
    assert all(t.settings["prefs"]["of"] == 1 for t in tunes)
    plain = generate(model, n=2, seed=1)
    assert [t.tokens for t in tunes] == [t.tokens for t in plain]


def test_logs_with_nothing_to_learn_fit_and_step_aside(model, tmp_path):
    empty = Preferences.fit([], model)
    assert empty.ready == {"reward": False, "history": False} and empty.suggest() == {}
    log = EventLog(tmp_path / "odd.jsonl")
    log.settings("temperature", 1.0, 1.5)                 # settings only
    log.rate("000000000000", +1)                          # a tune this log never showed
    foreign = ["<s>", "M:?", "K:?", "S:?", "A", "</s>"]   # liked, but no value this model knows
    for i in range(MIN_LIKED + 1):
        log.rate(log.tune([*foreign[:4], "ABCDE"[i], "</s>"], {"temperature": 0.0}), +1)
    prefs = Preferences.fit(read_events(log.path), model)
    assert prefs.reward.n == MIN_LIKED + 1 and not prefs.reward.ready     # only likes
    assert not prefs.history.fitted and not prefs.prediction.sure        # nothing it can read
    assert prefs.generate(model, 1, seed=0)[0].settings["prefs"]["steered_by"] == []


def test_temperature_zero_is_read_as_zero(model):
    names = feature_names({s: model.choices(s) for s in ("meter", "mode", "style")})
    x = tune_features(TOKENS, {"temperature": 0.0}, {s: model.choices(s)
                                                     for s in ("meter", "mode", "style")})
    assert x[names.index("temperature")] == 0.0
    x = tune_features(TOKENS, {}, {s: model.choices(s) for s in ("meter", "mode", "style")})
    assert x[names.index("temperature")] == 1.0 / 2.5               # missing: the default


def test_a_class_is_read_in_the_order_the_ratings_were_given(tmp_path):
    a, b = EventLog(tmp_path / "a.jsonl", session="a"), EventLog(tmp_path / "b.jsonl",
                                                                  session="b")
    stamps = iter(f"2026-12-05T10:00:0{i}.000Z" for i in range(10))
    for log, tokens in ((b, TOKENS), (a, [*TOKENS[:4], "G", "</s>"]), (b, [*TOKENS[:4], "F",
                                                                              "</s>"])):
        tid = tune_id(tokens)
        for kind, fields in (("tune", {"tune": tid, "tokens": tokens, "settings": {}}),
                             ("rate", {"tune": tid, "rating": 1})):
            with open(log.path, "a") as f:
                f.write(json.dumps({"v": 1, "time": next(stamps), "session": log.session,
                                    "type": kind, **fields}) + "\n")
    js = judgements(read_events(tmp_path))              # files: a then b; ratings: b, a, b
    assert [j.session for j in js] == ["b", "a", "b"] and [j.order for j in js] == [0, 1, 2]


def test_a_line_cut_off_by_a_dead_kernel_stays_apart(tmp_path):
    log = EventLog(tmp_path / "a.jsonl")
    tid = log.tune(TOKENS, {})
    with open(log.path, "a") as f:
        f.write('{"v": 1, "time": "2026')                # the kernel died mid-line
    log.rate(tid, +1)
    with pytest.warns(UserWarning, match="1 log line"):
        events = read_events(log.path)
    assert [e["type"] for e in events] == ["tune", "rate"]


def test_fitting_is_reproducible_and_a_saved_file_loads_the_same(model, minor_log, tmp_path):
    events = read_events(minor_log)
    a, b = Preferences.fit(events, model, seed=1), Preferences.fit(events, model, seed=1)
    assert a.prediction.mode == b.prediction.mode
    path = a.save(tmp_path / "p.json")
    back = Preferences.load(path)
    tunes = generate(model, n=5, seed=9)
    assert np.allclose(back.p_like(tunes), a.p_like(tunes))
    assert back.prediction.mode == a.prediction.mode
    h = back.history.predict(list(events))
    assert h.mode == pytest.approx(a.prediction.mode)
    for text in ('{"format": "something else"}', "[]", "not json"):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(ValueError, match="not a preferences file"):
            Preferences.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="prefs train"):
        Preferences.load(tmp_path / "none.json")


def test_feature_names_follow_the_model(model):
    choices = {s: model.choices(s) for s in ("meter", "mode", "style")}
    names = feature_names(choices)
    assert "mode min" in names and "style irish" in names and "temperature" in names
    assert "repeated_bars" in names and len(names) == len(set(names))
    assert len(tune_features(TOKENS, {}, choices)) == len(names)
    assert not HistoryModel(choices).predict([]).sure     # untrained: it predicts nothing


# -- a mixture through guidance ----------------------------------------------------------------

def test_a_conditioning_mixture_is_drawn_per_tune(model):
    tunes = generate(model, n=60, seed=4, mode={"min": 1, "dor": 1}, style={"irish": 1},
                     guidance=1.5)
    modes = {t.tokens[2] for t in tunes}
    assert modes == {"K:min", "K:dor"} and {t.tokens[3] for t in tunes} == {"S:irish"}
    with pytest.raises(ValueError, match="mode mixture: 'blues' is not one of"):
        generate(model, n=2, mode={"blues": 1})
    with pytest.raises(ValueError, match="style mixture weights must be finite"):
        generate(model, n=2, style={"irish": float("nan")})


# -- the session, the studio, the listeners, the CLI -----------------------------------------

def test_a_session_logs_moves_before_the_tune_they_wrote(model, tmp_path):
    s = RatingSession(model, tmp_path / "s.jsonl")
    with pytest.raises(ValueError, match="no tune yet"):
        s.rate(+1)
    with pytest.raises(ValueError, match="nothing learned yet"):
        s.steered()
    with pytest.raises(ValueError, match="unknown setting 'volume'"):
        s.write(volume=11)
    with pytest.raises(ValueError, match="temperature"):
        s.write(temperature=-1)                           # refused before it is logged
    assert s.events() == [] and s.settings["temperature"] == 1.0
    s.write(temperature=0.7, seed=5)
    s.play()
    s.skip()
    kinds = [(e["type"], e.get("name")) for e in s.events()]
    assert kinds == [("settings", "temperature"), ("settings", "seed"), ("tune", None),
                     ("play", None), ("skip", None)]


def test_the_rating_studio_is_driven_by_its_buttons(model, tmp_path):
    studio = RatingStudio(model, tmp_path / "me.jsonl", settings={"temperature": 0.9}, N=3)
    judged = studio.rate_with(MINOR, 8, seed=1)
    studio.studio.set(mode="min")                      # a student moves a menu
    judged += studio.rate_with(MINOR, 4, seed=2)
    kinds = [e["type"] for e in studio.session.events()]
    assert kinds.count("rate") == 12 and kinds.count("play") == 12
    assert kinds.count("tune") == 14                   # the first, 12 next seeds, the menu move
    assert {"name": "mode", "old": None, "new": "min"}.items() <= \
        next(e for e in studio.session.events() if e.get("name") == "mode").items()
    assert studio.liked == sum(judged) and "12 judged" in studio.status.value
    shown = studio.studio.tune
    studio.rate_with(MINOR, 2, seed=3, explore=True)     # moves the controls itself
    assert studio.studio.tune is not shown and studio.ratings == 14
    assert studio.studio.tune.tokens not in [e["tokens"] for e in studio.session.events()
                                             if e["type"] == "tune"][:-1]   # not judged yet
    studio.like.click()                                  # a person's click: a fresh tune
    assert studio.ratings == 15
    studio.learn.click()
    assert "Learned in" in studio.status.value and not studio.steer.disabled
    assert studio.apply.disabled is (not studio.session.prefs.prediction.sure)
    studio.steer.click()
    assert "Steered for you" in studio.studio.status.value, studio.status.value
    assert studio.session.events()[-1]["steered"] is True
    with pytest.raises(ValueError, match="N .* must be an integer >= 1"):
        RatingStudio(model, tmp_path / "x.jsonl", N=0)


def test_a_studio_error_goes_to_the_status_line(model, tmp_path):
    studio = RatingStudio(model, tmp_path / "me.jsonl")
    studio.apply.disabled = False
    studio.apply.click()                               # nothing learned: no suggestion
    assert "no suggestion yet" in studio.status.value


def test_shuffled_ratings_move_with_their_scale(model, minor_log, tmp_path):
    events = read_events(minor_log)
    fake = shuffled(events, seed=1)
    assert sum(e.get("rating") == 1 for e in fake) == sum(e.get("rating") == 1 for e in events)
    assert [e["type"] for e in fake] == [e["type"] for e in events]
    assert [e.get("rating") for e in fake] != [e.get("rating") for e in events]
    log = EventLog(tmp_path / "mixed.jsonl")
    for i in range(12):
        tid = log.tune([*TOKENS[:4], "ABCDEFGabcde"[i], "</s>"], {})
        log.rate(tid, 5, stars=True) if i % 2 else log.rate(tid, -1)
    for seed in range(5):
        for e in shuffled(read_events(log.path), seed):
            check_event(e)                               # a 5 never lands on a thumbs event


def test_a_learning_curve_has_every_checkpoint_and_its_columns(model, tmp_path):
    curve = learning_curve(model, LISTENERS[2], checkpoints=(0, 6), batch=4, N=2, seed=0,
                           folder=tmp_path)
    assert [r["ratings"] for r in curve["rows"]] == [0, 6]
    for r in curve["rows"]:
        for k in ("unsteered", "steered", "random"):
            assert 0 <= r[k] <= 1 and 0 <= r[f"{k}_distinct4"] <= 1
    assert curve["rows"][0]["ready"] == {"reward": False, "history": False}
    assert len(read_events(curve["log"])) == curve["events"] >= 12


def test_prefs_from_the_command_line(model, minor_log, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli(["prefs", "train", str(minor_log.parent), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "24 judged tunes" in text and "reward model: ready" in text and out.exists()
    assert cli(["generate", "--prefs", str(out), "--n", "2", "--best-of", "2",
                "--max-tokens", "40", "--out", str(tmp_path / "o")]) == 0
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["prefs"] == str(out) and len(run["runs"][0]["files"]) == 2
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    for bad, code in ((["generate", "--prefs", str(out), "--style", "irish"], 2),
                      (["generate", "--prefs", str(tmp_path / "none.json")], 1),  # OSError
                      (["prefs", "train", str(tmp_path / "empty")], 2)):
        rc = cli([*bad, "--out", str(tmp_path / "never")] if bad[0] == "generate" else bad)
        err = capsys.readouterr().err
        assert rc == code and err.startswith("error: ") and err.count("\n") == 1, (bad, err)
    assert not (tmp_path / "never").exists()


def test_the_preference_plots(model):
    choices = {s: model.choices(s) for s in ("meter", "mode", "style")}
    view = plots.plot_prediction(choices, {s: None for s in choices}, show=False)
    assert {b.get_width() for b in view.bars["mode"]} == {1 / len(choices["mode"])}
    view.update({"meter": None, "style": None,
                 "mode": {m: float(m == "min") for m in choices["mode"]}}, title="x", draw=False)
    widths = [b.get_width() for b in view.bars["mode"]]
    assert widths[choices["mode"].index("min")] == 1 and sum(widths) == 1
    fig = plots.plot_reward_weights({"mode min": 1.2, "mode maj": -0.8, "x": 0.1}, top=2)
    assert len(fig.axes[0].patches) == 2
    with pytest.raises(ValueError, match="weights is empty"):
        plots.plot_reward_weights({})
    rows = [{"ratings": k, "unsteered": .2, "steered": .5, "random": .2} for k in (0, 5)]
    fig = plots.plot_learning_curves([{"listener": "a", "rows": rows}] * 4, show=False)
    assert sum(ax.get_visible() for ax in fig.axes) == 4

