"""Helpers for the browser tests: servers (JupyterLab, Voilà), Chromium, and a student's moves.

Everything a test starts it stops: the servers run in their own process group and are stopped
(kernels first) in ``finally`` blocks of the fixtures in ``conftest.py``. Waits are for
selectors, kernel states and page conditions, each bounded by a generous timeout; a loaded
2-core machine is the normal case here, not the exception.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "tests" / "artifacts"

#: Where a Chromium-family browser lives, in the order tried after $FOLK_SAMPLER_CHROMIUM.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome")
MACOS_BROWSERS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
                  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # Offline by construction: any host but this machine fails at once instead of waiting on
    # DNS (Voilà's template asks a CDN for Font Awesome, for instance).
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
]

# Timeouts (milliseconds for Playwright, seconds elsewhere): generous, for a slow machine.
UI_TIMEOUT_MS = 120_000          # any selector or page condition
NAVIGATION_TIMEOUT_MS = 240_000  # Voilà answers only after it has executed the notebook
SERVER_START_S = 120
RUN_ALL_TIMEOUT_S = 240          # one notebook, Run All Cells, until the kernel is idle
CHANGE_TIMEOUT_S = 90            # a widget's answer to a slider move

#: An error output: a traceback, or an exception's name at the start of a line.
TRACEBACK_RE = re.compile(r"Traceback|^\s*\w*(Error|Exception)\b", re.MULTILINE)
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_ERRORS = ".jupyter-widgets-error-widget"
#: The notebook on show (JupyterLab hides the panels of other tabs).
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WIDGET_ERROR_TEXT = re.compile(r"Error displaying widget|Error rendering|"
                               r"There was an error when executing cell")


def notebook_paths() -> list[Path]:
    """Every notebook of the curriculum, in teaching order."""
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def find_chromium() -> str | None:
    """A Chromium-family browser: $FOLK_SAMPLER_CHROMIUM, then one on PATH (Debian's
    ``chromium``, Chrome...), then the one Playwright installed (``playwright install
    chromium``), then macOS's Chromium or Chrome; None when there is none."""
    import shutil

    given = os.environ.get("FOLK_SAMPLER_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            own = p.chromium.executable_path
        if own and Path(own).exists():
            return own
    except Exception:  # noqa: BLE001 -- no Playwright browser: try the next place
        pass
    return next((b for b in MACOS_BROWSERS if Path(b).exists()), None)


def require_chromium() -> str:
    """The browser's executable. Without one the browser tests skip with one line saying how
    to get one -- except in CI (``CI`` set), where a missing browser is a failure."""
    import pytest

    found = find_chromium()
    if found:
        return found
    how = ("no Chromium or Chrome found: install one (Debian/Ubuntu: `apt-get install "
           "chromium`; anywhere: `python -m playwright install chromium`; macOS: Chrome), "
           "or set FOLK_SAMPLER_CHROMIUM to its executable")
    if os.environ.get("CI"):
        pytest.fail(how, pytrace=False)
    pytest.skip(how)


def free_port() -> int:
    """A TCP port that was free a moment ago (the server is told not to retry others)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------

def jupyter_env(home: Path) -> dict[str, str]:
    """The environment of a server and its kernels: config, data and runtime in ``home``."""
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONUNBUFFERED="1",
               # kernels share 2 cores with a training run: keep their CPU use modest
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    env.pop("JUPYTER_PATH", None)
    return env


def write_lab_settings(settings_dir: Path) -> None:
    """User settings for a quiet, test-friendly JupyterLab.

    No news or update prompt; no autosave (the notebooks in the repository stay as they are);
    no windowing, so every cell and output of a notebook is in the page.
    """
    settings = {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                        "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in settings.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


class Server:
    """A server process (JupyterLab or Voilà) in its own process group, with its log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 port: int):
        self.name, self.argv, self.env, self.log_path, self.port = name, argv, env, log_path, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, ready: Callable[[], bool]) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode} "
                                   f"before it was ready:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} was not ready after {SERVER_START_S} s on port "
                           f"{self.port}:\n{self.log_tail()}")

    def listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def http_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            if self._log is not None:
                self._log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        """Stop the server and whatever it started (kernels): TERM, then KILL the group."""
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # kernels that outlived their server are in the same process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


class LabServer(Server):
    """JupyterLab on the repository, no token, settings and state in a temporary folder."""

    def __init__(self, home: Path, log_path: Path):
        settings, workspaces = home / "lab-settings", home / "lab-workspaces"
        write_lab_settings(settings)
        workspaces.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, "-m", "jupyterlab",
                "--ServerApp.token=", "--ServerApp.password=",
                "--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                "--ServerApp.allow_root=True", f"--ServerApp.root_dir={REPO}",
                "--ServerApp.terminals_enabled=False",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={workspaces}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        super().__init__("JupyterLab", argv, jupyter_env(home), log_path, port)
        self._opener: urllib.request.OpenerDirector | None = None
        self._xsrf = ""

    def start(self) -> None:  # type: ignore[override]
        super().start(lambda: self.http_ok("/api/status"))

    def _api(self, method: str, path: str) -> Any:
        """A REST call; the server wants its ``_xsrf`` cookie echoed on anything but GET."""
        if self._opener is None:
            jar = http.cookiejar.CookieJar()
            self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            with self._opener.open(self.url + "/lab", timeout=60) as r:   # sets _xsrf
                r.read()
            self._xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"X-XSRFToken": self._xsrf})
        with self._opener.open(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> list[str]:
        """End every session and kernel of this server (one notebook's kernel at a time).

        Returns what went wrong, if anything (the server's stop kills what is left).
        """
        problems = []
        try:
            for session in self._api("GET", "/api/sessions") or []:
                self._api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self._api("GET", "/api/kernels") or []:
                self._api("DELETE", f"/api/kernels/{kernel['id']}")
        except (urllib.error.URLError, OSError, ValueError) as err:
            problems.append(f"shutting the kernels down: {err}")
        return problems


class VoilaServer(Server):
    """Voilà serving one notebook as an app (tracebacks shown, so a failure says why)."""

    def __init__(self, notebook: Path, home: Path, log_path: Path):
        port = free_port()
        argv = [sys.executable, "-m", "voila", str(notebook.relative_to(REPO)),
                f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1",
                "--Voila.port_retries=0", "--show_tracebacks=True"]
        super().__init__("Voilà", argv, jupyter_env(home), log_path, port)

    def start(self) -> None:  # type: ignore[override]
        # Not GET /: that would start a kernel and execute the notebook once for nothing.
        super().start(self.listening)


# ---------------------------------------------------------------------------------------------
# Steps and artefacts
# ---------------------------------------------------------------------------------------------

class Steps:
    """Numbered screenshots of a test's steps, kept under tests/artifacts/ when it fails."""

    def __init__(self, page: Any, directory: Path):
        self.page, self.directory, self.n = page, directory, 0
        self.log: list[str] = []
        self.kernel_errors: list[str] = []   # tracebacks seen on the kernel's websocket
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        """Record that the test reached step ``name`` and take a screenshot of the page."""
        self.n += 1
        self.note(f"step {self.n:02d}: {name}")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        with contextlib.suppress(Exception):  # a screenshot must never hide the real failure
            self.page.screenshot(path=str(self.directory / f"{self.n:02d}-{slug}.png"),
                                 timeout=30_000)

    def note(self, line: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def keep(self, extra: dict[str, str]) -> None:
        """Save what a failure needs: a last full-page screenshot, the page, the logs."""
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(self.directory / "99-last.png"), full_page=True,
                                 timeout=60_000)
        with contextlib.suppress(Exception):
            (self.directory / "page.html").write_text(self.page.content(), encoding="utf-8")
        (self.directory / "steps.log").write_text("\n".join(self.log) + "\n", encoding="utf-8")
        if self.kernel_errors:
            (self.directory / "kernel-errors.log").write_text(
                "\n\n".join(self.kernel_errors) + "\n", encoding="utf-8")
        for name, text in extra.items():
            (self.directory / name).write_text(text, encoding="utf-8")

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# What a student does in JupyterLab
# ---------------------------------------------------------------------------------------------

# The kernel's state as the status bar shows it ("Python 3 (ipykernel) | Idle"): the notebook
# toolbar's execution indicator also says idle while there is no kernel yet.
_KERNEL_STATE_JS = """() => {
  if (document.querySelector('.jp-Dialog')) return 'dialog';
  const bar = document.querySelector('#jp-main-statusbar');
  const text = bar ? bar.textContent : '';
  if (/No Kernel/.test(text)) return 'no kernel';
  const m = text.match(/\\|\\s*([A-Z][a-z]+)/);  // "Python 3 (ipykernel) | Idle"
  return m ? m[1].toLowerCase() : null;
}"""


def wait_kernel_idle(page: Any, steps: Steps, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Wait until the notebook's kernel is idle, accepting a kernel-selection dialog."""
    deadline = time.monotonic() + timeout_s
    while True:
        left_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
        state = page.wait_for_function(
            f"() => {{ const s = ({_KERNEL_STATE_JS})(); "
            "return ['idle', 'dialog', 'dead'].includes(s) ? s : false; }",
            timeout=left_ms).json_value()
        if state == "idle":
            return
        if state == "dead":
            raise AssertionError("the notebook's kernel died")
        # A dialog: the kernel selection (keep the suggested Python 3 kernel) or another.
        dialog = page.locator(".jp-Dialog")
        steps.note(f"dialog: {dialog.inner_text()[:200]!r}")
        steps("dialog")
        dialog.locator("button.jp-mod-accept").first.click()
        dialog.wait_for(state="detached", timeout=UI_TIMEOUT_MS)


def menu_command(page: Any, menu: str, command: str) -> None:
    """Open a menu of the menu bar and choose a command, as a user does with the mouse."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    item = page.locator(f'.lm-Menu-item[data-command="{command}"]')
    item.wait_for(state="visible")
    item.click()


def open_notebook(page: Any, lab_url: str, notebook: Path, steps: Steps) -> None:
    """Open a notebook from its JupyterLab URL and wait until its kernel is ready.

    Each test has a workspace of its own (named after the notebook and the step recorder), so
    JupyterLab restores no tab of an earlier test.
    """
    workspace = re.sub(r"[^A-Za-z0-9-]+", "-", steps.directory.name).strip("-")
    page.goto(f"{lab_url}/lab/workspaces/{workspace}/tree/"
              f"{notebook.relative_to(REPO).as_posix()}", wait_until="domcontentloaded")
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(state="visible")
    steps(f"opened {notebook.name}")
    wait_kernel_idle(page, steps)
    steps("kernel idle")


_RUN_STATE_JS = """() => {
  const status = (KERNEL_STATE_JS)();
  if (status === 'dead' || status === 'dialog') return status;
  const prompts = [...document.querySelectorAll('NOTEBOOK_SELECTOR .jp-CodeCell')]
    .filter(c => (c.querySelector('.cm-content')?.textContent ?? '').trim() !== '')
    .map(c => c.querySelector('.jp-InputArea-prompt')?.textContent ?? '');
  if (prompts.some(p => p.includes('*')) || status !== 'idle') return false;
  if (prompts.every(p => /\\[\\d+\\]/.test(p))) return 'done';
  const stderr = [...document.querySelectorAll('STDERR_SELECTOR')].map(e => e.textContent);
  if (stderr.some(t => /Traceback|Error|Exception/.test(t))) return 'error';
  return false;
}""".replace("STDERR_SELECTOR", STDERR).replace("NOTEBOOK_SELECTOR", NOTEBOOK).replace(
    "KERNEL_STATE_JS", _KERNEL_STATE_JS)


def run_all_cells(page: Any, steps: Steps, timeout_s: float = RUN_ALL_TIMEOUT_S) -> str:
    """Clear all outputs, Run → Run All Cells, and wait until every cell ran (or one failed).

    Outputs are cleared first so that nothing saved in the notebook can pass for a fresh result.
    Returns ``"done"`` or ``"error"`` (a cell raised; the cells after it did not run).
    """
    menu_command(page, "Edit", "editmenu:clear-all")
    page.wait_for_function("() => document.querySelectorAll("
                           f"'{NOTEBOOK} .jp-OutputArea-output').length === 0")
    steps("outputs cleared")
    t0 = time.monotonic()
    menu_command(page, "Run", "runmenu:run-all")
    steps("run all cells")
    deadline = t0 + timeout_s
    while True:
        left_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
        try:
            state = page.wait_for_function(_RUN_STATE_JS, timeout=left_ms,
                                           polling=250).json_value()
        except Exception as err:
            steps("run all cells timed out")
            raise AssertionError(f"Run All Cells did not finish in {timeout_s:.0f} s; prompts: "
                                 f"{prompts(page)}") from err
        if state == "dialog":      # e.g. a kernel selection that appeared late
            wait_kernel_idle(page, steps)
            continue
        break
    steps.note(f"run all cells: {state} after {time.monotonic() - t0:.1f} s")
    steps(f"ran all cells ({state})")
    if state == "dead":
        raise AssertionError("the kernel died while running the notebook")
    return state


def prompts(page: Any) -> list[str]:
    return page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def error_outputs(scope: Any) -> list[str]:
    """Error outputs in ``scope`` (a page, a cell, any locator): tracebacks written to stderr,
    widgets that failed to display, Voilà's "error when executing cell".

    Warnings and progress bars on stderr are not errors; a traceback or an exception's name is.
    """
    found = [t.strip() for t in scope.locator(STDERR).all_inner_texts() if TRACEBACK_RE.search(t)]
    found += [f"widget error: {t.strip()}" for t in scope.locator(WIDGET_ERRORS).all_inner_texts()]
    found += [t.strip() for t in scope.locator(".jp-OutputArea-output").all_inner_texts()
              if WIDGET_ERROR_TEXT.search(t)]
    return found


def errors_by_cell(page: Any) -> list[str]:
    """The error outputs of a JupyterLab notebook, each with the first line of its cell."""
    found = []
    cells = page.locator(f"{NOTEBOOK} .jp-CodeCell")
    for i in range(cells.count()):
        cell = cells.nth(i)
        errors = error_outputs(cell)
        if errors:
            first = cell.locator(".cm-line").first.inner_text().strip()[:60]
            found.extend(f"code cell {i + 1} ({first!r}):\n{e[-2000:]}" for e in errors)
    return found


def code_cell(page: Any, source: str) -> Any:
    """The code cell whose source contains ``source`` (exactly one)."""
    cell = page.locator(f"{NOTEBOOK} .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=source))
    count = cell.count()
    assert count == 1, f"expected one code cell with {source!r}, found {count}"
    return cell


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------

def slider(page: Any, scope: Any, label: str) -> Any:
    """An ipywidgets slider (its root element) in ``scope``, by its description."""
    name = page.locator("label.widget-label", has_text=re.compile(rf"^{re.escape(label)}$"))
    return scope.locator(".widget-slider").filter(has=name)


def press_on_slider(page: Any, slider_root: Any, key: str, times: int = 1) -> None:
    """Focus a slider's handle (noUiSlider) and press a key, as a keyboard user does."""
    handle = slider_root.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)


def wait_until(page: Any, condition: Callable[[], Any], timeout_s: float, what: str, *,
               steps: Steps | None = None, since: int = 0) -> Any:
    """Poll ``condition`` (every 250 ms, in the page's time) until it is truthy.

    With ``steps``, a traceback from the kernel (``steps.kernel_errors[since:]``) ends the wait
    at once: the widget's callback failed, and waiting longer would only hide why.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if steps is not None and steps.kernel_errors[since:]:
            raise AssertionError(f"{what}: the kernel reported an error instead:\n"
                                 f"{steps.kernel_errors[since]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        page.wait_for_timeout(250)


def assert_no_kernel_errors(steps: Steps) -> None:
    """No traceback came from the kernel, in a cell's output or from a widget's callback."""
    assert not steps.kernel_errors, ("the kernel reported an error:\n\n"
                                     + "\n\n".join(steps.kernel_errors))


def stable_screenshot(page: Any, locator: Any, timeout_s: float = 30) -> bytes:
    """A screenshot of ``locator`` once two in a row (half a second apart) are the same."""
    locator.scroll_into_view_if_needed()
    last = locator.screenshot(animations="disabled")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        shot = locator.screenshot(animations="disabled")
        if shot == last:
            return shot
        last = shot
    return last


@contextlib.contextmanager
def console_log(page: Any) -> Iterator[list[str]]:
    """Collect the page's console errors and uncaught exceptions (kept as an artefact)."""
    lines: list[str] = []

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            lines.append(f"console.{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: lines.append(f"pageerror: {err}"))
    yield lines


_ERROR_MSG = re.compile(rb'"msg_type":\s*"error"')
_STDERR_MSG = re.compile(rb'"name":\s*"stderr"')
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\\u001b\[[0-9;]*[A-Za-z]")


def kernel_error_text(payload: str | bytes) -> str | None:
    """The traceback in a kernel message the page received, or None.

    Errors in widget callbacks never reach a cell's output: the kernel sends them with the
    widget's message as parent (JupyterLab files them in its log console, Voilà nowhere). The
    tests read them off the kernel's websocket instead: an ``error`` message, or ``stderr``
    text with a traceback in it.
    """
    data = payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
    is_error = _ERROR_MSG.search(data) is not None
    if not is_error and not (b"Traceback" in data and _STDERR_MSG.search(data)):
        return None
    text = data.decode("utf-8", "replace")
    key = r'"traceback":\s*\[' if is_error else r'"text":\s*"'
    m = re.search(key, text)
    try:
        value = json.JSONDecoder().raw_decode(text, m.end() - 1)[0] if m else None
    except ValueError:
        value = None
    if isinstance(value, list):
        body = "\n".join(str(line) for line in value)
    elif isinstance(value, str):
        body = value
    else:  # an unexpected shape: keep the raw text around the traceback
        start = max(0, text.find("Traceback") - 200)
        body = text[start:start + 4000]
    return _ANSI.sub("", body).strip()[-4000:]


def watch_kernel_errors(page: Any, errors: list[str]) -> None:
    """Append to ``errors`` every traceback the page's kernel websockets bring."""

    def on_frame(payload: str | bytes) -> None:
        text = kernel_error_text(payload)
        if text:
            errors.append(text)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))


# ---------------------------------------------------------------------------------------------
# The tune studio (notebook 03 in JupyterLab, and the Voilà app)
# ---------------------------------------------------------------------------------------------

def studio_output(page: Any, scope: Any) -> Any:
    """The output that holds a TuneStudio: the one with a ``seed`` slider and tabs."""
    seed = page.locator("label.widget-label", has_text=re.compile(r"^seed$"))
    studio = scope.locator(".jp-OutputArea-output").filter(
        has=page.locator(".widget-tab")).filter(has=seed)
    studio.first.wait_for(state="visible")
    assert studio.count() == 1, f"expected one tune studio, found {studio.count()}"
    return studio


def _audio_seconds(audio: Any) -> float:
    """How long the browser says the audio lasts (-1: it cannot read it, -2: no answer)."""
    return audio.evaluate("""(el, ms) => new Promise(resolve => {
        if (el.readyState >= 1) return resolve(el.duration);
        el.addEventListener('loadedmetadata', () => resolve(el.duration));
        el.addEventListener('error', () => resolve(-1));
        setTimeout(() => resolve(-2), ms);
        el.load();
    })""", CHANGE_TIMEOUT_S * 1000)


def check_score_and_audio(studio: Any, what: str) -> tuple[str, str]:
    """The studio shows a score with note heads and a playable audio element.

    Returns the score's SVG markup and the audio's source.
    """
    tune = studio.locator(".widget-tab-contents > .widget-html .folk-sampler-studio-tune").first
    tune.locator(".score svg g.notehead").first.wait_for(state="attached")
    svg = tune.locator(".score svg").first
    heads = svg.locator("g.notehead").count()
    assert heads >= 8, f"{what}: the score has {heads} note heads"
    audio = tune.locator("audio")
    assert audio.count() == 1, f"{what}: expected one audio player, found {audio.count()}"
    src = audio.get_attribute("src") or ""
    assert src.startswith("data:audio/wav;base64,") and len(src) > 1000, (
        f"{what}: the audio player has no WAV ({src[:60]!r})")
    assert audio.get_attribute("controls") is not None, f"{what}: the audio has no controls"
    seconds = _audio_seconds(audio)
    assert seconds > 1, f"{what}: the browser reads {seconds} s of audio"
    return svg.evaluate("e => e.outerHTML"), src


def check_seed_changes_score(page: Any, steps: Steps, studio: Any) -> None:
    """Score and audio are there; the seed moved one step with the keyboard writes a new tune."""
    studio.scroll_into_view_if_needed()
    svg_before, audio_before = check_score_and_audio(studio, "the studio as it opens")
    seed = slider(page, studio, "seed")
    readout = seed.locator(".widget-readout")
    # the status line: the studio's HTML outside its tabs that names a seed
    status = studio.locator(".widget-html:not(.widget-tab .widget-html)").filter(
        has_text=re.compile(r"seed \d+")).first
    seed_before = int(readout.inner_text())
    status_before = status.inner_text()
    assert f"seed {seed_before}" in status_before, status_before
    steps("studio before the seed moves")

    # A keyboard user: focus the seed slider's handle, press the right arrow (the slider acts
    # on release; the keyboard changes the value at once).
    since = len(steps.kernel_errors)
    press_on_slider(page, seed, "ArrowRight")
    target = seed_before + 1
    tune = studio.locator(".widget-tab-contents > .widget-html .folk-sampler-studio-tune").first

    def changed() -> bool:
        svg = tune.locator(".score svg").first
        return svg.count() > 0 and svg.evaluate("e => e.outerHTML") != svg_before

    try:
        wait_until(page, lambda: readout.inner_text().strip() == str(target), CHANGE_TIMEOUT_S,
                   f"the seed readout shows {target}")
        wait_until(page, changed, CHANGE_TIMEOUT_S,
                   f"the score changes when the seed moves {seed_before} → {target}",
                   steps=steps, since=since)
    except AssertionError as err:
        steps("studio did not answer")
        raise AssertionError(f"{err}; the studio's status line says: {status.inner_text()!r}"
                             ) from None
    wait_until(page, lambda: f"seed {target}" in status.inner_text(), CHANGE_TIMEOUT_S,
               f"the status line names seed {target}")
    steps("studio after the seed moved")
    text = status.inner_text()
    assert "⚠" not in text and "No new tune" not in text, text
    _, audio_after = check_score_and_audio(studio, f"the studio at seed {target}")
    assert audio_after != audio_before, "the audio did not change with the tune"
