"""Fixtures of the browser tests: Chromium through Playwright, JupyterLab and Voilà servers.

Each server gets a free port and a temporary home (settings, workspaces, runtime and config),
and is stopped in a ``finally`` whatever happens. Each test gets a fresh browser context and a
:class:`~folk_browser.Steps` recorder; the screenshots of its steps, the page, the console and
the server's log are kept under ``tests/artifacts/<test>/`` when it fails (always, with
``FOLK_SAMPLER_KEEP_ARTIFACTS=1``).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from folk_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    NAVIGATION_TIMEOUT_MS,
    NOTEBOOKS,
    UI_TIMEOUT_MS,
    LabServer,
    Server,
    Steps,
    VoilaServer,
    console_log,
    require_chromium,
    watch_kernel_errors,
)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the test item, so fixtures know whether it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, driven by Playwright (one per test module)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on the repository (no token), stopped with its kernels at the end."""
    home = tmp_path_factory.mktemp("jupyterlab")
    server = LabServer(home, home / "jupyterlab.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def voila_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoilaServer]:
    """Voilà serving the app notebook, notebooks/apps/tune_studio.ipynb."""
    home = tmp_path_factory.mktemp("voila")
    server = VoilaServer(NOTEBOOKS / "apps" / "tune_studio.ipynb", home, home / "voila.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _recorded_page(request: pytest.FixtureRequest, browser: Any,
                   server: Server) -> Iterator[tuple[Any, Steps]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    try:
        page = context.new_page()
        steps = Steps(page, ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name))
        watch_kernel_errors(page, steps.kernel_errors)
        with console_log(page) as console:
            try:
                yield page, steps
            finally:
                if _failed(request) or os.environ.get("FOLK_SAMPLER_KEEP_ARTIFACTS"):
                    steps.keep({"console.log": "\n".join(console) + "\n",
                                "server.log": server.log_tail(200) + "\n"})
                else:
                    steps.discard()
    finally:
        context.close()


@pytest.fixture
def lab_page(request: pytest.FixtureRequest, browser: Any,
             lab: LabServer) -> Iterator[tuple[Any, Steps]]:
    """A fresh page for JupyterLab; the notebook's kernel is shut down after the test."""
    try:
        with _recorded_page(request, browser, lab) as page_steps:
            yield page_steps
    finally:
        for problem in lab.shutdown_kernels():
            warnings.warn(problem, stacklevel=1)


@pytest.fixture
def voila_page(request: pytest.FixtureRequest, browser: Any,
               voila_studio: VoilaServer) -> Iterator[tuple[Any, Steps]]:
    """A fresh page for the Voilà app (its kernel ends with the page or the server)."""
    with _recorded_page(request, browser, voila_studio) as page_steps:
        yield page_steps
