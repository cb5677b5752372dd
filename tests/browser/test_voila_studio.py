"""The tune studio as an app: Voilà serves notebooks/apps/tune_studio.ipynb (the
studio alone: no lesson text, no exercises), Chromium opens it.

The page must show the studio's widgets, a score and an audio player, and no error output;
moving the seed slider with the keyboard must write a new tune (the score changes).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from folk_browser import (
    ARTIFACTS,
    REPO,
    Steps,
    VoilaServer,
    assert_no_kernel_errors,
    check_seed_changes_score,
    error_outputs,
    studio_output,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


def test_voila_studio_renders_and_seed_changes_score(voila_page: tuple[Any, Steps],
                                                     voila_studio: VoilaServer) -> None:
    page, steps = voila_page
    # Voilà executes the notebook before it answers: the navigation timeout is generous.
    page.goto(voila_studio.url + "/", wait_until="domcontentloaded")
    steps("page loaded")
    studio = studio_output(page, page)
    steps("studio rendered")
    sliders = studio.locator(".widget-slider")
    assert sliders.count() >= 5, f"the studio shows {sliders.count()} sliders"
    assert studio.locator(".widget-dropdown").count() >= 3
    errors = error_outputs(page)
    assert not errors, "error output in the Voilà app:\n\n" + "\n\n".join(errors)

    # the app is the studio alone: none of notebook 03's lesson text or exercise checks
    body = page.inner_text("body")
    assert "Not yet" not in body and "Exercise" not in body
    page.screenshot(path=str(ARTIFACTS / "studio.png"))
    if os.environ.get("FOLK_SAMPLER_UPDATE_SCREENSHOT"):  # the README's picture
        page.screenshot(path=str(REPO / "docs" / "studio.png"))

    check_seed_changes_score(page, steps, studio)
    errors = error_outputs(page)
    assert not errors, "error output after the seed moved:\n\n" + "\n\n".join(errors)
    assert_no_kernel_errors(steps)
