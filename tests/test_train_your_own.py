"""Notebook 8's library: a student's own ABC collection, the live training view, and comparing
two models whose vocabularies differ."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from toolkit import data, load_model, plots  # noqa: E402
from toolkit import training_view as TV  # noqa: E402
from toolkit.lm.train import evaluate, new_model, train_model  # noqa: E402
from toolkit.music.tokens import BARS, EOS, split_tunes  # noqa: E402

TINY = dict(emb=16, hidden=48, layers=1, dropout=0.0)
FAST = dict(batch_size=8, lr=1e-2, progress=False, seed=1)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def toy():
    return data.load_toy(style="toy")


def toy_text(first: int, last: int) -> str:
    """Some of the toy tunes, as ABC text (good tunes that pass every check)."""
    return "\n".join(split_tunes(data.TOY_PATH.read_text())[first:last])


BROKEN = """% three tunes, each broken in its own way
X:1
T:The Guitarist's Sharp
M:6/8
L:1/8
K:D
|: d2e F#ed | A3 A3 :|

X:2
T:No Key Yet
M:2/4
L:1/8
|: AB cd | e4 :|

X:3
T:One Bar Too Long
M:3/4
L:1/8
K:G
G2 A2 B2 | c2 B2 A2 G2 | G6 |]

X:4
T:Fine After All
M:2/4
L:1/8
K:G
GA Bc | d4 |]
"""


@pytest.fixture
def collection(tmp_path):
    """A student's folder: good files (one in a subfolder), and every kind of broken one."""
    folder = tmp_path / "my tunes"
    (folder / "reels").mkdir(parents=True)
    (folder / "jigs_and_airs.abc").write_text(toy_text(0, 12))
    (folder / "reels" / "more.abc").write_text(toy_text(12, 20))
    (folder / "broken.abc").write_text(BROKEN)
    (folder / "forgot_x.abc").write_text("T:No Number\nM:2/4\nL:1/8\nK:G\nGA Bc | d4 |]\n")
    (folder / "empty.abc").write_text("")
    (folder / "picture.abc").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (folder / "notes.txt").write_text("X:1\nnot read: only .abc files are\n")
    return folder


# --------------------------------------------------------------------------------------------
# a broken collection: the good tunes train, every bad one is reported with file and reason

def test_a_broken_collection_is_read_tune_by_tune_and_every_problem_is_named(collection):
    records, skipped = data.read_abc_files(collection, style="mine", check_bars=True)
    sources = [r["source"] for r in records]
    assert sources == ["broken.abc#3"] + [f"jigs_and_airs.abc#{i}" for i in range(12)] + [
        f"more.abc#{i}" for i in range(8)]
    assert all(r["tokens"][3] == "S:mine" for r in records)
    why = dict(skipped)
    assert set(why) == {"broken.abc tune 1", "broken.abc tune 2", "broken.abc tune 3",
                        str(collection / "forgot_x.abc"), str(collection / "empty.abc"),
                        str(collection / "picture.abc")}
    # the problem, and the line as the student's editor numbers it (in the file, not the tune)
    assert why["broken.abc tune 1"] == "unknown symbol '#' (line 7, column 9)"
    assert why["broken.abc tune 2"] == "music before the key (K:) header (line 13, column 1)"
    assert why["broken.abc tune 3"] == "1 bar(s) not as long as 3/4: bar 2"
    for name in ("forgot_x.abc", "empty.abc", "picture.abc"):
        assert why[str(collection / name)] == "no tune found (every tune starts with an X: line)"

    table = data.skipped_table(skipped, root=collection)
    lines = table.splitlines()
    assert lines[0].split() == ["skipped", "why"] and len(lines) == 2 + len(skipped)
    assert str(collection) not in table  # paths relative to the folder that was read
    for where, reason in skipped:
        row = next(line for line in lines if line.startswith(where.replace(f"{collection}/", "")))
        assert reason in row


def test_without_the_bar_check_a_miscounted_tune_is_kept(collection):
    records, skipped = data.read_abc_files(collection / "broken.abc")
    assert [r["source"] for r in records] == ["broken.abc#2", "broken.abc#3"]
    assert [w for w, _ in skipped] == ["broken.abc tune 1", "broken.abc tune 2"]


def test_folders_without_tunes_and_missing_files_are_reported_not_fatal(tmp_path):
    (tmp_path / "empty folder").mkdir()
    records, skipped = data.read_abc_files([tmp_path / "empty folder", tmp_path / "gone.abc"])
    assert records == []
    assert dict(skipped) == {str(tmp_path / "empty folder"): "no .abc files in this folder",
                             str(tmp_path / "gone.abc"): "cannot read the file: "
                                                         "No such file or directory"}
    with pytest.raises(ValueError, match="train_records is empty"):
        train_model(records, records, epochs=1, progress=False, **TINY)
    assert data.skipped_table([]) == "nothing skipped: every tune could be read"


def test_the_good_tunes_of_a_broken_collection_train_a_model_that_learns(collection):
    records, _ = data.read_abc_files(collection, style="mine", check_bars=True)
    train, valid = data.holdout(records, every=5)
    assert len(valid) == 5 and len(train) == 16
    model = new_model(train + valid, seed=0, **TINY)
    before = evaluate(model, valid)
    assert abs(before - math.log(model.vocab_size)) < 0.3  # untrained: about a uniform guess
    trained, history = train_model(train, valid, model=model, epochs=8, **FAST)
    assert trained is model  # trained in place: the object a monitor holds is the one learning
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert evaluate(model, valid) < 0.8 * before   # clearly learnt: 20 % below untrained


def test_the_example_folder_has_good_tunes_and_reports_its_broken_ones():
    records, skipped = data.read_abc_files(data.MY_TUNES_DIR, style="mine", check_bars=True)
    assert len(records) == 3
    table = data.skipped_table(skipped, root=data.MY_TUNES_DIR)
    assert "broken_on_purpose.abc tune 1" in table and "'#'" in table
    assert "no_header.abc" in table and "X: line" in table
    assert "1 bar(s) not as long as 3/4" in table


def test_holdout_keeps_every_nth_tune_for_validation():
    recs = [{"n": i} for i in range(7)]
    train, valid = data.holdout(recs, every=3)
    assert [r["n"] for r in valid] == [0, 3, 6] and [r["n"] for r in train] == [1, 2, 4, 5]
    assert data.holdout(recs[:2]) == ([recs[1]], [recs[0]])
    with pytest.raises(ValueError, match="at least 2 tunes"):
        data.holdout(recs[:1])
    with pytest.raises(ValueError, match="every must be an integer >= 2, got 1"):
        data.holdout(recs, every=1)


# --------------------------------------------------------------------------------------------
# the model: trained as given, with a clear error when its vocabulary does not fit

def test_train_model_trains_the_given_model_reproducibly_and_checks_its_vocabulary(toy):
    train, valid = toy[4:], toy[:4]
    runs = []
    for _ in range(2):
        model = new_model(train + valid, seed=3, **TINY)
        _, history = train_model(train, valid, model=model, epochs=2, **FAST)
        runs.append(([h["train_loss"] for h in history], [h["valid_loss"] for h in history]))
    assert runs[0] == runs[1]
    narrow = new_model(train[:1], seed=0, **TINY)
    missing = next(t for r in train + valid for t in r["tokens"] if t not in narrow.stoi)
    with pytest.raises(ValueError, match=f"lacks {missing!r}"):
        train_model(train, valid, model=narrow, epochs=1, **FAST)


# --------------------------------------------------------------------------------------------
# the live view: one point per epoch, drawn in place, and a tune per epoch

def test_the_monitor_draws_one_point_per_epoch_in_place_and_writes_a_tune_each_time(toy):
    train, valid = toy[4:], toy[:4]
    model = new_model(train + valid, seed=0, **TINY)
    before = evaluate(model, valid)
    monitor = TV.TrainingMonitor(model, 3, valid_before=before, show=False,
                                 sample={**TV.most_common_header(train), "seed": 2},
                                 sample_tokens=40)
    fig, train_line, valid_line = monitor.fig, monitor.curve.train_line, monitor.curve.valid_line
    assert len(train_line.get_xdata()) == 0 and list(valid_line.get_xdata()) == [0]
    seen = []

    def on_epoch(entry):
        monitor(entry)
        seen.append((len(train_line.get_xdata()), len(monitor.tunes)))

    _, history = train_model(train, valid, model=model, epochs=3, on_epoch=on_epoch, **FAST)
    assert seen == [(1, 2), (2, 3), (3, 4)]  # one more point and one more tune per epoch
    assert monitor.fig is fig and monitor.curve.train_line is train_line  # updated in place
    assert list(train_line.get_xdata()) == [1, 2, 3]
    assert list(train_line.get_ydata()) == [h["train_loss"] for h in history]
    assert list(valid_line.get_xdata()) == [0, 1, 2, 3]
    assert list(valid_line.get_ydata()) == [before] + [h["valid_loss"] for h in history]
    assert monitor.history == history and monitor.seconds_per_epoch > 0
    titles = [t.abc.splitlines()[1] for t in monitor.tunes]
    assert titles == ["T:untrained (seed 2)"] + [f"T:after epoch {e} (seed 2)" for e in (1, 2, 3)]
    for tune in monitor.tunes:  # a tune cut off at sample_tokens ends at a bar line
        assert tune.tokens[:4] == ["<s>", "M:4/4", "K:maj", "S:toy"]
        assert tune.tokens[-1] == EOS or tune.tokens[-1] in BARS or \
            not any(t in BARS for t in tune.tokens)
    # watching does not change the run: the same training without a monitor
    again = new_model(train + valid, seed=0, **TINY)
    _, unwatched = train_model(train, valid, model=again, epochs=3, **FAST)
    assert [h["valid_loss"] for h in unwatched] == [h["valid_loss"] for h in history]


def test_the_loss_curve_moves_its_own_artists():
    curve = plots.plot_loss_curve(epochs=4, before=4.5, uniform=4.4)
    line, fig = curve.valid_line, curve.fig
    assert curve.ax.get_xlim()[1] >= 4 and curve.ax.get_ylim()[1] > 4.5
    assert "ln V = 4.40" in " ".join(t.get_text() for t in curve.ax.get_legend().get_texts())
    curve.update([3.0, 2.5], [2.8, 2.4])
    assert curve.valid_line is line and curve.fig is fig and curve.n_points == 2
    assert list(line.get_ydata()) == [4.5, 2.8, 2.4]
    assert curve.text.get_text() == "epoch 2: training 2.500, validation 2.400"
    curve.update([9.0, 2.5, 2.0, 1.9, 1.8], [8.0, 2.4, 2.0, 1.9, 1.8])  # longer and higher
    assert curve.ax.get_ylim()[1] > 9.0 and curve.ax.get_xlim()[1] >= 5
    with pytest.raises(ValueError, match="one loss per epoch each, got 2 and 1"):
        curve.update([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        plots.plot_loss_curve(epochs=0)


# --------------------------------------------------------------------------------------------
# two vocabularies, one point of a tune

def test_compare_next_puts_each_models_probability_on_the_right_token_names(toy, shipped):
    train, valid = toy[4:], toy[:4]
    small, _ = train_model(train, valid, model=new_model(train + valid, seed=0, **TINY),
                           epochs=2, **FAST)
    point = TV.prefix_after_bars(valid[1]["tokens"], bars=2)
    assert point[3] == "S:toy" and point[-1] in BARS
    cmp = TV.compare_next({"toy model": small, "shipped model": shipped}, point)

    assert cmp.notes == ["shipped model does not know S:toy: it reads S:? there"]
    assert cmp.prefixes["shipped model"][3] == "S:?" and cmp.prefixes["toy model"] == point
    for name, model, prefix in (("toy model", small, point),
                                ("shipped model", shipped, cmp.prefixes["shipped model"])):
        own = torch.softmax(model.next_logits(prefix).double(), -1)
        for i, token in enumerate(cmp.tokens):
            if token in model.stoi:
                assert cmp.known[name][i]
                assert cmp.probs[name][i] == pytest.approx(float(own[model.stoi[token]]))
            else:
                assert not cmp.known[name][i] and cmp.probs[name][i] == 0.0
        assert cmp.probs[name].sum() == pytest.approx(1.0)
    lacks = cmp.missing("toy model")
    assert lacks and all(t in shipped.stoi and t not in small.stoi for t in lacks)
    assert 0.0 < cmp.overlap() < 1.0
    assert "(lacks it)" in cmp.table(len(cmp.tokens))

    with pytest.raises(ValueError, match=f"toy model does not know the token '@' at position "
                                         f"{len(point)} of the prefix"):
        TV.compare_next({"toy model": small}, point + ["@"])


def test_align_probs_gives_zero_to_names_the_vocabulary_lacks():
    got = TV.align_probs(torch.tensor([0.5, 0.3, 0.2]), ["G", "A", "B"], ["B", "c", "G", "A"])
    assert got.tolist() == pytest.approx([0.2, 0.0, 0.5, 0.3])
    with pytest.raises(ValueError, match="one value per token of vocab"):
        TV.align_probs([0.5, 0.5], ["G"], ["G"])


def test_the_comparison_plot_marks_tokens_a_model_cannot_write():
    tokens = ["G", "A", "B", "c"]
    probs = {"mine": [0.6, 0.4, 0.0, 0.0], "shipped": [0.1, 0.2, 0.6, 0.1]}
    known = {"mine": [True, True, False, True], "shipped": [True, True, True, True]}
    p = plots.plot_model_comparison(tokens, probs, known, top=4)
    assert p.labels == ["G", "B", "A", "c"]  # the most likely under either model first
    assert p.heights("mine").tolist() == [0.6, 0.0, 0.4, 0.0]
    marks = p.missing["mine"].get_ydata()
    assert marks[1] == 0.0 and np.isnan(marks[[0, 2, 3]]).all()  # × under B only
    assert np.isnan(p.missing["shipped"].get_ydata()).all()
    legend = [t.get_text() for t in p.legend.get_texts()]
    assert legend == ["mine", "shipped", "× not in that model's vocabulary (probability 0)"]
    assert p.note.get_text() == ("mine lacks 1 of the 4 tokens: probability 0 "
                                 "(1 shown here, marked ×)")
    bars_before = p.bars["mine"]
    p.update({"mine": [0.5, 0.5, 0.0, 0.0], "shipped": [0.25] * 4}, known)
    assert p.bars["mine"] is bars_before and p.heights("shipped").tolist() == [0.25] * 4
    with pytest.raises(ValueError, match="one value per token"):
        plots.plot_model_comparison(tokens, {"mine": [1.0]})


def test_readable_by_reads_unknown_styles_as_unknown_and_leaves_out_unreadable_tunes(shipped):
    tune = {"source": "x", "tokens": ["<s>", "M:2/4", "K:maj", "S:mine", "C", "|", "</s>"]}
    odd = {"source": "y", "tokens": ["<s>", "M:2/4", "K:maj", "S:mine", "C", "|", "@", "</s>"]}
    out = TV.readable_by(shipped, [tune, odd])
    assert [r["source"] for r in out] == ["x"] and out[0]["tokens"][3] == "S:?"
    assert tune["tokens"][3] == "S:mine"  # the caller's records are not changed


def test_points_of_a_tune_and_headers():
    tokens = ["<s>", "M:6/8", "K:min", "S:irish", "G", "|:", "c", "2", "|", "d", "|", "e"]
    assert TV.prefix_after_bars(tokens, 1) == tokens[:6]  # the pickup is a bar
    assert TV.prefix_after_bars(tokens, 3) == tokens[:11]
    with pytest.raises(ValueError, match="only 3 complete bar"):
        TV.prefix_after_bars(tokens, 4)
    recs = [{"tokens": ["<s>", "M:6/8", "K:maj", "S:?"]}] * 2 + [
        {"tokens": ["<s>", "M:2/4", "K:maj", "S:?"]}]
    assert TV.most_common_header(recs) == {"meter": "6/8", "mode": "maj"}


def test_the_docstring_examples_run():
    import doctest

    from toolkit import train

    for module in (TV, data, train):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
