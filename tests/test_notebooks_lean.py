"""The committed notebooks stay small enough for Binder and a quick clone.

A run notebook embeds every tune's sound as base64 WAV and every widget's state; `make
clean-notebooks` (scripts/clean_notebooks.py) strips them.  These tests fail when a notebook is
committed straight from a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
MAX_EACH = 500_000  # bytes
MAX_TOTAL = 4_500_000  # bytes

ids = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_small(path):
    size = path.stat().st_size
    assert size <= MAX_EACH, f"{path.name} is {size:,} bytes; run `make clean-notebooks`"


def test_notebooks_together_are_small():
    total = sum(p.stat().st_size for p in NOTEBOOKS)
    assert total < MAX_TOTAL, f"the notebooks weigh {total:,} bytes; run `make clean-notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_audio_and_no_widget_state(path):
    text = path.read_text(encoding="utf-8")
    assert "data:audio" not in text, f"{path.name} embeds audio; run `make clean-notebooks`"
    nb = json.loads(text)
    assert "widgets" not in nb["metadata"], (
        f"{path.name} saves widget state; run `make clean-notebooks`"
    )
    assert "kernelspec" in nb["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_stored_check_failed(path):
    """A band check (``exercises.within``) that printed ✗ when the notebook was saved is a
    failure nbval cannot see: it compares outputs, and the saved one says ✗ too."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            assert "✗" not in text, f"{path.name}: a stored check failed:\n{text}"


def test_cleaner_has_nothing_left_to_do(capsys, load_script):
    assert load_script("clean_notebooks").main(["--check"]) == 0, capsys.readouterr().out


def test_cleaner_strips_audio_widgets_and_big_images_but_keeps_text(load_script):
    nbformat = pytest.importorskip("nbformat")
    cleaner = load_script("clean_notebooks")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    audio = '<div><svg></svg><audio controls src="data:audio/wav;base64,UklGR"></audio></div>'
    big_png = "A" * (cleaner.MAX_RICH + 1)
    small_png = "B" * 1000
    plot_html = f"<div><img src='data:image/png;base64,{small_png}'/></div>"
    nb.cells = [
        nbformat.v4.new_code_cell(
            "tune",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
                nbformat.v4.new_output(
                    "execute_result", {"text/html": audio, "text/plain": "X:1"}, execution_count=1
                ),
                nbformat.v4.new_output("display_data", {"text/html": audio}),
            ],
        ),
        nbformat.v4.new_code_cell(
            "plots",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    {
                        "application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
                        "image/png": small_png,
                        "text/html": plot_html,
                        "text/plain": "Canvas()",
                    },
                ),
                nbformat.v4.new_output(
                    "display_data", {"image/png": big_png, "text/plain": "<Figure>"}
                ),
                nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[]),
            ],
        ),
        nbformat.v4.new_code_cell(
            "# NBVAL_CHECK_OUTPUT\nprint(1)",
            outputs=[
                nbformat.v4.new_output("display_data", {"image/png": big_png, "text/plain": "F"})
            ],
        ),
    ]
    changed, problems = cleaner.clean_notebook(nb)
    assert changed and not problems
    assert "widgets" not in nb.metadata and "kernelspec" in nb.metadata
    tune, plots, checked = (cell.outputs for cell in nb.cells)
    assert tune[0]["text"] == "hello\n"
    assert tune[1]["data"] == {"text/plain": "X:1"}
    assert len(tune) == 2  # the audio-only output is gone
    assert plots[0]["data"] == {"image/png": small_png, "text/plain": "Canvas()"}
    assert plots[1]["data"] == {"text/plain": "<Figure>"}
    assert plots[2]["ename"] == "ValueError"
    assert checked[0]["data"] == {"text/plain": "F"}  # nbval skips image/png: removable
    assert cleaner.clean_notebook(nb) == (False, [])  # idempotent

    # a checked cell whose compared output (HTML) holds audio is reported and left alone
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", {"text/html": audio})]
    changed, problems = cleaner.clean_notebook(nb)
    assert not changed and len(problems) == 1 and "text/html" in problems[0]
