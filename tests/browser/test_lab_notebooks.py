"""The curriculum as a student uses it: JupyterLab in headless Chromium.

Each notebook is opened from its URL, its outputs are cleared, Run → Run All Cells runs it, and
once the kernel is idle every code cell must have run and no output may be an error. Two
notebooks are also played with: the temperature slider of notebook 01 and the seed of the tune
studio in notebook 03, moved with the keyboard as a user would, the grammar toggle of the
steering studio in notebook 06, clicked, the note slider of the attention view in notebook 09,
which must repaint the score, and the rating buttons of notebook 10 (after its scripted listener
has rated 40 tunes, a person's click on 👍 is logged, and "one for me" shows a steered tune).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from folk_browser import (
    CHANGE_TIMEOUT_S,
    NOTEBOOKS,
    LabServer,
    Steps,
    assert_no_kernel_errors,
    check_seed_changes_score,
    code_cell,
    errors_by_cell,
    notebook_paths,
    open_notebook,
    press_on_slider,
    prompts,
    run_all_cells,
    slider,
    stable_screenshot,
    studio_output,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

TEMPERATURE = NOTEBOOKS / "01_softmax_and_temperature.ipynb"
STUDIO = NOTEBOOKS / "03_tune_studio.ipynb"
STEERING = NOTEBOOKS / "06_steering.ipynb"
TWO_MODELS = NOTEBOOKS / "09_two_models.ipynb"
PREFERENCES = NOTEBOOKS / "10_learning_what_you_like.ipynb"
#: Notebooks with a test of their own below (which runs them too).
DEDICATED = {TEMPERATURE.name, STUDIO.name, STEERING.name, TWO_MODELS.name, PREFERENCES.name}


def run_notebook_clean(page: Any, steps: Steps, lab: LabServer, notebook: Path) -> None:
    """Open ``notebook``, run all its cells, and fail on any error output or unrun cell."""
    assert notebook.exists(), f"{notebook.relative_to(NOTEBOOKS.parent)} is missing"
    open_notebook(page, lab.url, notebook, steps)
    state = run_all_cells(page, steps)
    errors = errors_by_cell(page)
    assert not errors, (f"{notebook.name}: error output after Run All Cells:\n\n"
                        + "\n\n".join(errors))
    assert state == "done", f"{notebook.name}: not every cell ran; prompts: {prompts(page)}"
    assert_no_kernel_errors(steps)


@pytest.mark.parametrize("notebook", [p for p in notebook_paths() if p.name not in DEDICATED],
                         ids=lambda p: p.stem)
def test_notebook_runs_clean(lab_page: tuple[Any, Steps], lab: LabServer,
                             notebook: Path) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, notebook)


def _number(pattern: str, texts: list[str]) -> float:
    for text in texts:
        m = re.search(pattern, text)
        if m:
            return float(m.group(1))
    raise AssertionError(f"no {pattern!r} in {texts}")


def test_temperature_slider_moves_readouts_and_plot(lab_page: tuple[Any, Steps],
                                                    lab: LabServer) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, TEMPERATURE)

    out = code_cell(page, "W.TemperatureExplorer(").locator(".jp-OutputArea")
    t_slider = slider(page, out, "T")
    readouts = out.locator(".widget-html")
    canvas = out.locator(".jupyter-matplotlib-canvas-div")
    canvas.wait_for(state="visible")
    wait_until(page, lambda: "entropy" in " ".join(readouts.all_inner_texts()), CHANGE_TIMEOUT_S,
               "the explorer's readouts appear")
    before_text = readouts.all_inner_texts()
    before_t = float(t_slider.locator(".widget-readout").inner_text())
    before_plot = stable_screenshot(page, canvas)
    steps("explorer before the move")

    # A keyboard user: focus the slider's handle and press the right arrow ten times.
    since = len(steps.kernel_errors)
    press_on_slider(page, t_slider, "ArrowRight", times=10)
    wait_until(page, lambda: readouts.all_inner_texts() != before_text, CHANGE_TIMEOUT_S,
               f"the readouts change when T moves (still {before_text})",
               steps=steps, since=since)
    wait_until(
        page, lambda: (shot := canvas.screenshot(animations="disabled")) != before_plot and shot,
        CHANGE_TIMEOUT_S, "the plot (ipympl canvas) changes when T moves",
        steps=steps, since=since)
    steps("explorer after the move")

    after_text = readouts.all_inner_texts()
    after_t = float(t_slider.locator(".widget-readout").inner_text())
    assert after_t > before_t, f"T went from {before_t} to {after_t}: ArrowRight should raise it"
    h_before = _number(r"H = ([\d.]+) bits", before_text)
    h_after = _number(r"H = ([\d.]+) bits", after_text)
    n_before = _number(r"= ([\d.]+)\s+of \d+ tokens", before_text)
    n_after = _number(r"= ([\d.]+)\s+of \d+ tokens", after_text)
    assert h_after > h_before and n_after > n_before, (
        f"a higher temperature flattens the distribution, yet T {before_t} → {after_t} moved "
        f"H {h_before} → {h_after} bits and the effective choices {n_before} → {n_after}")
    assert not errors_by_cell(page), errors_by_cell(page)
    assert_no_kernel_errors(steps)


def test_tune_studio_seed_changes_score(lab_page: tuple[Any, Steps], lab: LabServer) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, STUDIO)
    cell = code_cell(page, "st.TuneStudio(model, jig)")
    check_seed_changes_score(page, steps, studio_output(page, cell))
    assert not errors_by_cell(page), errors_by_cell(page)
    assert_no_kernel_errors(steps)


def test_steering_studio_grammar_toggle_writes_a_valid_tune(lab_page: tuple[Any, Steps],
                                                           lab: LabServer) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, STEERING)
    cell = code_cell(page, "SteeringStudio(model, judge")
    cell.scroll_into_view_if_needed()
    status = cell.locator(".widget-html").filter(has_text=re.compile(r"guidance [\d.]+ · "))
    wait_until(page, lambda: "· free:" in status.first.inner_text(), CHANGE_TIMEOUT_S,
               "the steering studio's status names the free setting")
    steps("steering studio, free")
    cell.get_by_role("button", name="grammar").click()
    wait_until(page, lambda: "· grammar: valid ABC" in status.first.inner_text(),
               CHANGE_TIMEOUT_S, "the status says the grammar's tune is valid ABC")
    steps("steering studio, grammar")
    assert not errors_by_cell(page), errors_by_cell(page)
    assert_no_kernel_errors(steps)


def test_attention_view_follows_the_note_slider(lab_page: tuple[Any, Steps],
                                                lab: LabServer) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, TWO_MODELS)
    out = code_cell(page, "AttentionView(transformer, tune)").locator(".jp-OutputArea")
    note = slider(page, out, "note")
    caption = out.locator(".widget-html").filter(has_text="writing note")
    wait_until(page, lambda: caption.count() == 1, CHANGE_TIMEOUT_S, "the caption appears")
    score = out.locator("svg").first
    score.wait_for(state="visible")
    before_caption = caption.inner_text()
    before_score = score.inner_html()
    assert before_score.count('fill="#d62728"') == 1, "one note, the one being written, is red"
    assert "repeats bar" in before_caption, f"it opens at a repeated bar: {before_caption!r}"
    steps("attention view before the move")

    since = len(steps.kernel_errors)
    press_on_slider(page, note, "ArrowRight", times=3)
    target = int(_number(r"writing note (\d+)", [before_caption])) + 3  # each press: one note
    wait_until(page, lambda: f"writing note {target} " in caption.inner_text(), CHANGE_TIMEOUT_S,
               f"the caption follows the slider to note {target} (it read {before_caption!r})",
               steps=steps, since=since)
    wait_until(page, lambda: score.inner_html() != before_score, CHANGE_TIMEOUT_S,
               "the score is repainted", steps=steps, since=since)
    assert score.inner_html().count('fill="#d62728"') == 1
    steps("attention view after the move")
    assert not errors_by_cell(page), errors_by_cell(page)
    assert_no_kernel_errors(steps)


def test_rating_studio_logs_a_click_and_steers(lab_page: tuple[Any, Steps],
                                               lab: LabServer) -> None:
    page, steps = lab_page
    run_notebook_clean(page, steps, lab, PREFERENCES)
    out = code_cell(page, "RatingStudio(model, log=LOG").locator(".jp-OutputArea")
    info = out.locator(".widget-html").filter(has_text="Learned from")
    wait_until(page, lambda: info.count() == 1 and "40 judged" in info.inner_text(),
               CHANGE_TIMEOUT_S, "what was learned from the scripted listener's 40 ratings")
    status = out.locator(".widget-html").filter(has_text="logged to")
    score = out.locator("svg").first
    score.wait_for(state="visible")
    before = score.inner_html()
    steps("rating studio after the scripted listener")

    since = len(steps.kernel_errors)
    out.get_by_role("button", name="👍 like").click()
    wait_until(page, lambda: status.count() == 1 and "41 judged" in status.inner_text(),
               CHANGE_TIMEOUT_S,
               "a click on 👍 is the 41st judgement", steps=steps, since=since)
    wait_until(page, lambda: score.inner_html() != before, CHANGE_TIMEOUT_S,
               "the next tune replaces the one just rated", steps=steps, since=since)
    steps("rating studio after a click on like")

    out.get_by_role("button", name=re.compile("one for me")).click()
    steered = out.locator(".widget-html").filter(has_text="Steered for you")
    wait_until(page, lambda: steered.count() == 1, CHANGE_TIMEOUT_S,
               "a steered tune is shown", steps=steps, since=since)
    assert "best of 8" in steered.first.inner_text()
    steps("rating studio with a steered tune")
    assert not errors_by_cell(page), errors_by_cell(page)
    assert_no_kernel_errors(steps)
