"""Your own sampler (notebook 07): a student's function joins the chain and is seen everywhere.

What a student relies on:

* a broken step function (wrong shape or type, NaN, +inf, every note removed, an exception
  inside it, None, a removed token brought back, the wrong signature) stops with a
  :class:`~toolkit.sampling.CustomStepError` that names the function, says what went wrong and how
  to fix it -- from ``generate``, from the tune studio and ``compare`` (on the status line, the
  kernel lives), and from the truncation explorer (in its readout, a slider never raises);
* a working one runs in the same tools as the built-in steps: ``extra_steps`` in the studio's
  settings, the step-through replays it with the context the generator passed, the explorer
  shows what it cut, ``summarize`` measures it;
* ``token_pitches`` / ``last_pitches`` read the notes exactly as ``metrics.notes_of`` does, so a
  rule written with them holds in the measured tunes.

Tunes are short (``max_tokens``) and batches small, so that the tests stay quick on 2 cores.
"""

from __future__ import annotations

import html
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st_  # noqa: E402

from toolkit import generate, load_model, plots  # noqa: E402
from toolkit import sampling as S  # noqa: E402
from toolkit import studio as st  # noqa: E402
from toolkit import widgets as W  # noqa: E402
from toolkit.measure.metrics import notes_of  # noqa: E402

NEG_INF = float("-inf")
SHORT = {"max_tokens": 40, "meter": "6/8", "mode": "maj"}
PREFIX = "M:6/8 K:maj S:irish |: c c"              # the next c would be the third in a row


@pytest.fixture(scope="module")
def model():
    return load_model()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# -- the worked examples of the notebook ----------------------------------------------------

def no_three_in_a_row(logits, ctx):
    last_two = S.last_pitches(ctx, 2)                       # (B, 2)
    pitch = S.token_pitches(ctx)                            # (B, V)
    repeated = last_two[:, 0] == last_two[:, 1]             # (B,)
    third = repeated[:, None] & (pitch == last_two[:, 1:])  # (B, V)
    return logits.masked_fill(third, NEG_INF)


def no_big_leaps(logits, ctx, max_leap=12):
    leap = (S.token_pitches(ctx) - S.last_pitches(ctx, 1)).abs()
    return logits.masked_fill(leap > max_leap, NEG_INF)


def tonic_at_phrase_ends(logits, ctx, bonus=2.0, phrase=4):
    at_end = ctx.bar % phrase == phrase - 1
    tonic = S.token_pitches(ctx) % 12 == 0
    return logits + bonus * (at_end[:, None] & tonic)


def pitches(tune) -> list[int]:
    return [n.pitch for n in notes_of(tune.tokens)]


# -- broken functions: each with what its message must say -----------------------------------

def forgot_return(logits):
    logits[:, 3] -= 1.0


def row_vector(logits):
    return logits[0]


def first_row_only(logits):
    return logits[:1]


def row_statistic(logits):
    return logits.max(dim=-1, keepdim=True).values


def as_numpy(logits):
    return logits.numpy()


def as_list(logits):
    return logits.tolist()


def as_mask(logits):
    return logits > 0


def token_ids(logits):
    return logits.argmax(dim=-1, keepdim=True)


def with_extra(logits):
    return logits, "note"


def log_of_negative(logits):
    return torch.log(logits.masked_fill(logits == NEG_INF, -1.0))


def times_zero(logits):
    return logits * 0.5 + logits * 0


def plus_inf(logits):
    return torch.where(logits == logits.max(dim=-1, keepdim=True).values, math.inf, logits)


def removes_all(logits):
    return torch.full_like(logits, NEG_INF)


def brings_back(logits):
    return logits.clamp(min=-100.0)


def per_row_bug(logits):
    best = logits.max(dim=-1).values
    return torch.where(logits == best, logits - 1.0, logits)


def looks_too_far_back(logits, ctx):
    before = ctx.history[:, -6]
    return logits - 0 * before[:, None]


def divides_by_text(logits):
    return logits / "two"


BROKEN = [
    pytest.param(forgot_return, ["returned None instead of logits", "`return logits`"],
                 id="None"),
    pytest.param(row_vector, [r"returned shape (V,)", "keep the row dimension",
                              "logits[:, i]"], id="shape-(V,)"),
    pytest.param(first_row_only, ["returned shape (1, V), but its input had shape (2, V)",
                                  "return every row"], id="shape-one-row"),
    pytest.param(row_statistic, ["returned shape (", "one number per row"],
                 id="shape-(B,1)"),
    pytest.param(as_numpy, ["returned a numpy array", "torch.as_tensor"], id="numpy"),
    pytest.param(as_list, ["returned a list", "torch.Tensor of logits with shape"],
                 id="list"),
    pytest.param(as_mask, ["returned a bool mask", "masked_fill(~mask, float('-inf'))"],
                 id="bool-mask"),
    pytest.param(token_ids, ["dtype torch.int64, not logits", "float('-inf')"], id="int"),
    pytest.param(with_extra, ["returned a tuple of 2 items", "return only the logits"],
                 id="tuple"),
    pytest.param(log_of_negative, ["returned NaN at row 0", "float('-inf')"], id="NaN"),
    pytest.param(times_zero, ["returned NaN at row 0, token 0 ('<pad>')",
                              "a token removed (-inf) before your step",
                              "torch.where(logits == float('-inf'), logits, out)"],
                 id="NaN-from-removed"),
    pytest.param(plus_inf, ["returned +inf at row 0", "large finite number"], id="+inf"),
    pytest.param(removes_all, ["removed every token in row(s) [0",
                               "Keep at least one token in every row"], id="all-removed"),
    pytest.param(brings_back, ["brought back row 0, token 0 ('<pad>')",
                               "keep -inf where it was"], id="brings-back"),
    pytest.param(per_row_bug, ["raised RuntimeError in line",
                               "`return torch.where(logits == best, logits - 1.0, logits)`",
                               "keepdim=True"], id="raises-shape"),
    pytest.param(looks_too_far_back, ["raised IndexError in line",
                                      "`before = ctx.history[:, -6]`",
                                      "only the four header tokens"], id="raises-index"),
    pytest.param(divides_by_text, ["raised TypeError in line", "`return logits / \"two\"`",
                                   "the error is in your function"], id="raises-type"),
]


#: messages that depend on writing several tunes at once (the studio writes one)
NEEDS_ROWS = {"shape-one-row", "raises-shape"}


def expected(fragment: str, model) -> str:
    """A fragment with V (the vocabulary size) filled in: "(1, V)" -> "(1, 117)"."""
    V = len(model.vocab)
    return fragment.replace(", V)", f", {V})").replace("(V,)", f"({V},)")


def assert_clear(message: str, fn, fragments, model) -> None:
    assert f"your function {fn.__name__}" in message
    for fragment in fragments:
        assert expected(fragment, model).lower() in message.lower(), (fragment, message)


@pytest.mark.parametrize(("fn", "fragments"), BROKEN)
def test_a_broken_step_stops_generate_with_a_message_that_says_what_and_how(model, fn,
                                                                            fragments):
    with pytest.raises(S.CustomStepError) as err:
        generate(model, n=2, seed=0, sampler=S.chain(fn, S.temperature(1.2)), **SHORT)
    assert_clear(str(err.value), fn, fragments, model)
    assert isinstance(err.value, ValueError)                # `except ValueError` catches it
    if "raised" in fragments[0]:                             # the student's own error, chained
        assert err.value.__cause__ is not None


def test_the_studio_shows_every_broken_step_on_its_status_line_and_recovers(model):
    studio = st.TuneStudio(model, {**SHORT, "seed": 1})
    assert studio.status.value.count("✅") == 1
    for param in BROKEN:
        if param.id in NEEDS_ROWS:
            continue
        fn, fragments = param.values
        studio.set(extra_steps=[fn])                        # never raises
        status = html.unescape(studio.status.value)
        assert "⚠️" in status and "CustomStepError" in status, (fn.__name__, status)
        assert_clear(status, fn, fragments, model)
    studio.set(extra_steps=[no_three_in_a_row])             # fixed: a tune again
    assert "✅" in studio.status.value and "no_three_in_a_row" in studio.status.value
    assert studio.use_extra_steps.value
    assert "no_three_in_a_row" in studio.use_extra_steps.description


def test_compare_shows_the_message_in_its_column_and_the_other_tune(model):
    c = st.compare(model, {**SHORT, "seed": 2}, {"extra_steps": [looks_too_far_back]})
    assert c.tunes[0] is not None and c.tunes[1] is None
    column = html.unescape(c.columns[1])
    assert "CustomStepError" in column and "your function looks_too_far_back" in column
    assert "IndexError" in column and "looks_too_far_back" in c.settings[1].label()


def test_wrong_signatures_are_refused_when_the_step_is_made():
    def three(logits, ctx, strength):
        return logits

    def none():
        return None

    def keyword(logits, *, strength):
        return logits

    with pytest.raises(S.CustomStepError, match=r"needs 3 arguments \(logits, ctx, strength\)"
                       r".*default value"):
        S.chain(three)
    with pytest.raises(S.CustomStepError, match="takes no arguments"):
        S.custom(none)
    with pytest.raises(S.CustomStepError, match="keyword argument.*strength"):
        st.Settings(extra_steps=[keyword])
    # a default value is enough, and a lambda fixes the others
    S.chain(lambda logits, ctx: three(logits, ctx, 2.0))


def test_a_call_instead_of_the_function_is_named():
    with pytest.raises(ValueError, match="pass the function itself"):
        S.chain(per_row_bug(torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="not its result"):
        st.Settings(extra_steps=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="not its result"):
        W.TruncationExplorer(logits=torch.zeros(3), vocab=["G", "A", "B"], extra_steps="G")


def test_a_step_that_reads_ctx_without_one_says_how_to_give_it(model):
    logits = model.next_logits(PREFIX)
    with pytest.raises(S.CustomStepError, match=r"called without one \(ctx=None\).*"
                                                r"S\.Context\.of\(tokens, model\.vocab\)"):
        S.explain(logits, S.chain(looks_too_far_back))
    # the helpers say what they need too, wrapped in the same kind of message
    with pytest.raises(S.CustomStepError, match="last_pitches needs ctx.history and ctx.vocab"):
        S.explain(logits, S.chain(no_three_in_a_row), ctx=S.Context(step=3))


def test_a_rule_after_greedy_truncation_says_to_put_it_first(model):
    """top-k 1 keeps the third c; the rule removes it: nothing left, and the message says why."""
    ctx = S.Context.of(PREFIX, model.vocab)
    logits = model.next_logits(PREFIX)[None].clone()
    logits[0, model.vocab.index("c")] = 50.0                 # make c the favourite for sure
    with pytest.raises(S.CustomStepError, match=r"left only 1: put your step first"):
        S.chain(S.top_k(1), no_three_in_a_row)(logits, ctx)
    kept = S.chain(no_three_in_a_row, S.top_k(1))(logits, ctx)   # first: truncation chooses
    assert torch.isfinite(kept).sum() == 1
    assert torch.isinf(kept[0, model.vocab.index("c")])


def test_a_step_may_scribble_on_its_inputs_without_changing_the_tune(model):
    """The step gets copies: changing ctx in place cannot rewrite the tune or the vocabulary."""
    vocab_before = list(model.vocab)

    def scribbles(logits, ctx):
        ctx.history.zero_()
        ctx.bar += 5
        ctx.vocab.clear()
        return logits

    plain = generate(model, n=3, seed=4, **SHORT)
    ruled = generate(model, n=3, seed=4, sampler=S.chain(scribbles), **SHORT)
    assert [t.tokens for t in ruled] == [t.tokens for t in plain]
    assert model.vocab == vocab_before


# -- the same tools as the built-in steps -----------------------------------------------------

def test_settings_take_extra_steps_which_run_first(model):
    s = st.Settings(temperature=0.8, top_p=0.9, extra_steps=no_three_in_a_row)
    assert s.extra_steps == (no_three_in_a_row,)
    assert s.label() == "no_three_in_a_row · T 0.8 · top-p 0.9 · seed 1"
    assert repr(s.chain()) == ("Chain(Custom(no_three_in_a_row) → Temperature(0.8) → TopP(0.9))")
    assert st.Settings.of({"extra_steps": [no_big_leaps]}, base=s).extra_steps == (no_big_leaps,)
    assert st.Settings().chain().name == "temperature_first"   # no extra steps: as before
    tune = st.new_tune(model, s.replace(seed=3, **SHORT))
    reference = generate(model, n=1, seed=3, sampler=S.chain(no_three_in_a_row,
                                                             S.temperature(0.8), S.top_p(0.9)),
                         **SHORT)[0]
    assert tune.tokens == reference.tokens


def test_the_studio_checkbox_switches_your_steps_off_with_the_same_seed(model):
    studio = st.TuneStudio(model, {**SHORT, "seed": 5, "extra_steps": [tonic_at_phrase_ends]})
    assert studio.use_extra_steps.layout.display is None    # shown when there are steps
    assert "tonic_at_phrase_ends" in studio.status.value
    with_rule = studio.tune.tokens
    studio.use_extra_steps.value = False
    assert studio.settings.extra_steps == ()
    plain = st.new_tune(model, {**SHORT, "seed": 5})
    assert studio.tune.tokens == plain.tokens
    studio.use_extra_steps.value = True
    assert studio.tune.tokens == with_rule
    assert st.TuneStudio(model, {**SHORT}).use_extra_steps.layout.display == "none"


def test_the_step_through_replays_a_step_that_reads_ctx(model):
    """Each step is explained with the context the generator passed: u draws the same token."""
    seen = []

    def spy(logits, ctx):
        seen.append((ctx.history.clone(), ctx.bar.clone(), ctx.step))
        return no_three_in_a_row(logits, ctx)

    rec = st.record(model, {**SHORT, "seed": 6, "max_tokens": 96, "extra_steps": [spy]})
    generated = list(seen)
    summary = rec.summary()                                  # replays every step
    assert summary["steps"] == len(rec) == len(generated)
    for i, (history, bar, step) in enumerate(generated):
        ctx = rec.context(i)
        assert torch.equal(ctx.history, history) and torch.equal(ctx.bar, bar)
        assert ctx.step == step == i
        logits, same_ctx = rec.chain_input(i)
        assert logits.shape == (1, len(model.vocab)) and torch.equal(same_ctx.history, history)
    # the rule bit somewhere in this tune: the step-through shows what it cut
    bites = [i for i in range(len(rec)) if rec[i].removed_mass > 0]
    assert bites, "the rule never cut anything in 96 tokens of a jig"
    view = st.StepThrough(rec)
    view.step.value = bites[0] + 1
    assert "cut" in view.info.value and "Step" in view.info.value


def test_the_explorer_shows_what_your_step_cut_and_never_raises_from_a_slider(model):
    app = W.TruncationExplorer(model, PREFIX, extra_steps=[no_three_in_a_row], top=12)
    c = model.vocab.index("c")
    model_probs = torch.softmax(model.next_logits(PREFIX).double(), -1).numpy()
    assert app.error is None and not app.kept[c]            # the third c is cut...
    shown = list(app.plot.tokens)
    assert c in shown                                       # ...and still on the chart, grey
    np.testing.assert_allclose(app.plot.heights[shown.index(c)], model_probs[c], rtol=1e-6)
    assert app.plot.colors[shown.index(c)].lower() == plots.COLORS["cut"].lower()
    assert app.explanation.stages[-1].probs[c] == 0
    assert "your steps cut <b>" in app.summary.value
    assert "Custom(no_three_in_a_row)" in app.chain_readout.value
    app.top_p.value = 0.5                                    # the knobs act after the rule
    assert not app.kept[c] and app.kept.sum() >= 1

    state = {"broken": False}

    def sometimes(logits, ctx):
        return logits[0] if state["broken"] else logits

    app = W.TruncationExplorer(model, PREFIX, extra_steps=sometimes)
    state["broken"] = True
    app.temperature.value = 1.5                              # no exception out of the slider
    assert isinstance(app.error, S.CustomStepError)
    assert "keep the row dimension" in html.unescape(app.summary.value)
    state["broken"] = False
    app.temperature.value = 1.2
    assert app.error is None and "keeps" in app.summary.value

    broken_from_the_start = W.TruncationExplorer(model, PREFIX, extra_steps=[forgot_return])
    assert "did you forget `return logits`" in broken_from_the_start.summary.value


def test_summarize_takes_your_measures_and_the_table_shows_them(model):
    def three(tune):
        p = pitches(tune)
        return any(a == b == c for a, b, c in zip(p, p[1:], p[2:], strict=False))

    measures = {"three in a row": three, "notes": lambda t: len(pitches(t))}
    plain = st.summarize(model, {**SHORT, "seed": 8}, n=6, measures=measures)
    ruled = st.summarize(model, {**SHORT, "seed": 8, "extra_steps": [no_three_in_a_row]}, n=6,
                         measures=measures)
    assert ruled["three in a row"] == 0.0
    assert len(ruled.written) == 6 and ruled["tunes"] == 6.0
    assert "three in a row" in ruled.shares and "notes" not in ruled.shares
    table = st.summary_table({"model": plain, "rule": ruled}).splitlines()
    row = next(line for line in table if line.startswith("three in a row"))
    assert row.split()[-1] == "0%"
    notes = next(line for line in table if line.startswith("notes "))
    assert f"{ruled['notes']:.2f}" in notes
    with pytest.raises(ValueError, match="the measure 'bad' raised ZeroDivisionError"):
        st.summarize(model, {**SHORT, "seed": 8}, n=2, measures={"bad": lambda t: 1 / 0})


def test_the_worked_examples_hold_in_the_measured_tunes(model):
    """A ban written with the helpers holds when the tunes are measured with notes_of."""
    hot = S.temperature(1.5)
    kw = {"n": 8, "seed": 9, "meter": "6/8", "max_tokens": 120}
    for tune in generate(model, sampler=S.chain(no_three_in_a_row, hot), **kw):
        p = pitches(tune)
        assert not any(a == b == c for a, b, c in zip(p, p[1:], p[2:], strict=False))
    for tune in generate(model, sampler=S.chain(no_big_leaps, hot), **kw):
        p = pitches(tune)
        assert all(abs(b - a) <= 12 for a, b in zip(p, p[1:], strict=False))


def test_the_tonic_bias_adds_only_in_a_phrase_last_bar(model):
    rows = ["M:6/8 K:maj S:? | c e g | c e g | c e g",       # bar 3: the end of a phrase
            "M:6/8 K:maj S:? | c e g | c e g | c e |"]       # bar 4: a new phrase
    ctx = S.Context.of(rows, model.vocab)
    assert ctx.bar.tolist() == [3, 4]
    logits = torch.zeros(2, len(model.vocab))
    out = tonic_at_phrase_ends(logits, ctx)
    tonic = [i for i, t in enumerate(model.vocab) if t.rstrip(",'") in ("C", "c", "=C", "=c")]
    assert (out[0, tonic] == 2.0).all() and int((out[0] != 0).sum()) == len(tonic)
    assert (out[1] == 0).all()


# -- the helpers: exactly what notes_of reads --------------------------------------------------

def test_context_of_is_what_the_generator_passes(model):
    ctx = S.Context.of(PREFIX, model.vocab)
    assert [model.vocab[i] for i in ctx.history[0]] == ["<s>", *PREFIX.split()]
    assert ctx.step == 3 and ctx.bar.tolist() == [1] and ctx.vocab == model.vocab
    with pytest.raises(ValueError, match=r"unknown token 'H' at position 5"):
        S.Context.of("M:6/8 K:maj S:? | H", model.vocab)
    with pytest.raises(ValueError, match="equal length"):
        S.Context.of([["|", "c"], ["|"]], model.vocab)


def test_helpers_read_key_signature_accidentals_ties_and_rests(model):
    def ctx(text):
        return S.Context.of(text, model.vocab)

    v = model.vocab.index
    minor = S.token_pitches(ctx("M:6/8 K:min S:? | E"))[0]
    assert minor[v("E")] == 63 and minor[v("=E")] == 64 and minor[v("c")] == 72
    assert math.isnan(minor[v("2")]) and math.isnan(minor[v("|")]) and math.isnan(minor[v("z")])
    carried = S.token_pitches(ctx("M:6/8 K:maj S:? | ^F G"))[0]
    assert carried[v("F")] == 66 and carried[v("^F")] == 66
    after_bar = S.token_pitches(ctx("M:6/8 K:maj S:? | ^F G |"))[0]
    assert after_bar[v("F")] == 65
    assert S.last_pitches(ctx("M:6/8 K:maj S:? | G 2 - G z A"), 3).tolist()[0][1:] == [67, 69]
    assert math.isnan(S.last_pitches(ctx("M:6/8 K:maj S:? | G 2 - G z A"), 3)[0, 0])
    assert S.last_pitches(ctx("M:6/8 K:maj S:?"), 2).isnan().all()
    with pytest.raises(ValueError, match="k must be an integer ≥ 1"):
        S.last_pitches(ctx("M:6/8 K:maj S:? | G"), 0)


BODY = ["C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g", "a", "b", "c'", "^F", "_B",
        "=F", "=B", "^c", "_e", "2", "3", "/2", "-", "z", "|", "|:", ":|", ">", "(3", "[1"]


@settings(max_examples=60, deadline=None)
@given(mode=st_.sampled_from(["maj", "min", "dor", "mix"]),
       body=st_.lists(st_.sampled_from(BODY), max_size=30), k=st_.integers(1, 4))
def test_helpers_agree_with_notes_of_on_any_tune(model, mode, body, k):
    tokens = ["<s>", "M:6/8", f"K:{mode}", "S:?", *body]
    ctx = S.Context.of(tokens, model.vocab)
    notes = [n.pitch for n in notes_of(tokens)]
    last = S.last_pitches(ctx, k)[0]
    want = [math.nan] * max(0, k - len(notes)) + notes[-k:] if notes else [math.nan] * k
    np.testing.assert_array_equal(last.numpy(), np.array(want[-k:], dtype=float))
    pitch = S.token_pitches(ctx)[0]
    for tok in {t for t in BODY if t[-1].isalpha() or t[-1] == "'"} - {"z"}:
        sounded = notes_of([*tokens, tok])
        assert pitch[model.vocab.index(tok)] == sounded[-1].pitch, (tokens, tok)
