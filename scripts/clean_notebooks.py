#!/usr/bin/env python3
"""Keep the committed notebooks lean: strip embedded audio, widget state and big images.

    python scripts/clean_notebooks.py            # clean every notebooks/**/*.ipynb in place
    python scripts/clean_notebooks.py --check    # write nothing; exit 1 if one is not clean
    python scripts/clean_notebooks.py a.ipynb    # clean only the notebooks named

A notebook that has been run carries every tune's sound as an uncompressed WAV inside an HTML
output (``<audio src="data:audio/wav;base64,...">``, about 1 MB per tune) and the state of every
widget (``metadata.widgets``).  None of it is needed to read the notebook, and running it brings
it all back.  For each notebook this script:

* removes ``metadata.widgets`` (the saved widget state); keeps ``kernelspec`` and the rest;
* removes audio: any ``audio/*`` output and any HTML (or other text) output that embeds
  ``data:audio`` or an ``<audio>`` element;
* removes the ``application/vnd.jupyter.widget-view+json`` part of widget outputs (it points to
  state that is no longer saved); their ``text/plain`` fallback stays;
* removes an HTML output that only wraps an inline image when the same output also carries that
  image as ``image/png`` (ipympl's static fallback: the same picture twice);
* removes any image or HTML output larger than ``MAX_RICH`` characters (100 kB); smaller static
  plots stay, unless the notebook is still over ``MAX_NOTEBOOK`` (500 kB): then its images and
  HTML outputs go, largest first, until it fits;
* keeps every text output as it is: streams, ``text/plain``, ``text/markdown``, errors.

An output whose every part was removed is dropped; an output that keeps its ``text/plain`` stays.

nbval (``pytest --nbval-lax``) compares the outputs of cells marked ``# NBVAL_CHECK_OUTPUT``
with a fresh run, on every MIME type except ``image/png``, ``image/jpeg`` and the widget view
(nbval/plugin.py, ``skip_compare``), and fails when the two runs show different MIME types.
So in a checked cell this script removes only what nbval skips (widget views, PNG or JPEG
images); if such a cell holds audio or a big HTML or SVG output, removing it would break the
comparison and keeping it would keep the notebook heavy: the script leaves the cell alone,
reports it and exits with status 1 (stop displaying that output in the checked cell).

The notebook is written back with nbformat (indent 1, as Jupyter writes it) only when something
changed, so a second run changes nothing.  ``--check`` also fails for a notebook over
``MAX_NOTEBOOK`` bytes (500 kB) even when there is nothing left to strip.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

MAX_RICH = 100_000  # characters of one image or HTML output (base64 for images)
MAX_NOTEBOOK = 500_000  # bytes of one committed notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"
# MIME types nbval leaves out of its comparison (nbval/plugin.py, IPyNbFile.skip_compare)
NBVAL_SKIPS = {WIDGET_VIEW, "image/png", "image/jpeg"}

_AUDIO = re.compile(r"data:audio/|<audio\b", re.IGNORECASE)
# an HTML output that is nothing but an inline image in some wrapping markup
_IMG_ONLY = re.compile(r"<img\b[^>]*\bsrc=[\"']data:image/", re.IGNORECASE)
_OTHER_CONTENT = re.compile(r"<(?!/?(?:div|span|img|br)\b)\w", re.IGNORECASE)


def _text(value) -> str:
    if isinstance(value, list):
        return "".join(value)
    if isinstance(value, str):
        return value
    return ""  # JSON outputs (dicts): not text


def _why_remove(mime: str, value, data: dict) -> str | None:
    """The reason to remove one part of an output's MIME bundle, or None to keep it."""
    text = _text(value)
    if mime.startswith("audio/"):
        return "audio"
    if mime == WIDGET_VIEW:
        return "widget view"
    if mime != "text/plain" and _AUDIO.search(text):
        return "audio"
    if mime == "text/html" and "image/png" in data:
        if _IMG_ONLY.search(text) and not _OTHER_CONTENT.search(text):
            return "duplicate of image/png"
    if (mime.startswith("image/") or mime == "text/html") and len(text) > MAX_RICH:
        return f"{len(text) // 1000} kB"
    return None


def clean_notebook(nb) -> tuple[bool, list[str]]:
    """Clean ``nb`` in place.  Returns (changed, problems): the problems are checked cells whose
    outputs cannot be stripped without breaking nbval's comparison (left untouched)."""
    changed = False
    problems: list[str] = []
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        checked = CHECK_MARK in cell.source
        new_outputs = []
        cell_changed = False
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:  # stream, error
                new_outputs.append(output)
                continue
            removals = {m: why for m, v in data.items() if (why := _why_remove(m, v, data))}
            if not removals:
                new_outputs.append(output)
                continue
            compared = sorted(m for m in removals if m not in NBVAL_SKIPS)
            if checked and compared:
                problems.append(
                    f"cell {index} is marked {CHECK_MARK} and nbval compares its "
                    + ", ".join(f"{m} ({removals[m]})" for m in compared)
                    + ": left as it is"
                )
                new_outputs.append(output)
                continue
            cell_changed = True
            output = copy.deepcopy(output)
            for mime in removals:
                del output["data"][mime]
                output.get("metadata", {}).pop(mime, None)
            if output["data"]:
                new_outputs.append(output)
        if cell_changed:
            cell.outputs = new_outputs
            changed = True
    return changed, problems


def _size(nb) -> int:
    return len(nbformat.writes(nb, version=4).encode("utf-8")) + 1


def fit_budget(nb, budget: int = MAX_NOTEBOOK) -> bool:
    """Remove images and HTML outputs, largest first, until ``nb`` is at most ``budget`` bytes.
    Never touches text outputs, nor what nbval compares in a checked cell.  Returns changed."""
    changed = False
    while _size(nb) > budget:
        candidates = []
        for c, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            checked = CHECK_MARK in cell.source
            for o, output in enumerate(cell.get("outputs", [])):
                for mime, value in output.get("data", {}).items():
                    rich = mime.startswith("image/") or mime == "text/html"
                    if rich and not (checked and mime not in NBVAL_SKIPS):
                        candidates.append((-len(_text(value)), c, o, mime))
        if not candidates:
            break
        _, c, o, mime = min(candidates)
        output = nb.cells[c].outputs[o]
        del output["data"][mime]
        output.get("metadata", {}).pop(mime, None)
        if not output["data"]:
            del nb.cells[c].outputs[o]
        changed = True
    return changed


def notebook_paths(names: list[str]) -> list[Path]:
    if names:
        return [Path(n).resolve() for n in names]
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to clean (default: notebooks/**)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing notebooks that are not clean or over 500 kB",
    )
    args = parser.parse_args(argv)

    failed = []
    total_before = total_after = 0
    for path in notebook_paths(args.notebooks):
        raw = path.read_bytes()
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        changed, problems = clean_notebook(nb)
        changed = fit_budget(nb) or changed
        after = raw
        if changed:
            text = nbformat.writes(nb, version=4)
            after = (text if text.endswith("\n") else text + "\n").encode("utf-8")
        total_before += len(raw)
        total_after += len(after)
        name = _show(path)
        for problem in problems:
            print(f"{name}: {problem}")
        if args.check:
            reasons = []
            if after != raw:
                reasons.append("holds audio, widget state or big images")
            if len(raw) > MAX_NOTEBOOK:
                reasons.append(f"{len(raw):,} bytes (at most {MAX_NOTEBOOK:,})")
            if problems:
                reasons.append("checked cells with outputs too big to keep")
            if reasons:
                failed.append(name)
                print(f"{name}: " + "; ".join(reasons))
            continue
        if after != raw:
            path.write_bytes(after)
            print(f"{name}: {len(raw):,} -> {len(after):,} bytes")
        if len(after) > MAX_NOTEBOOK:
            print(f"{name}: still {len(after):,} bytes (at most {MAX_NOTEBOOK:,})")
            failed.append(name)
        elif problems:
            failed.append(name)

    if args.check:
        if failed:
            print(f"{len(failed)} notebook(s) not clean: run `make clean-notebooks`")
            return 1
        return 0
    print(f"total: {total_before:,} -> {total_after:,} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
