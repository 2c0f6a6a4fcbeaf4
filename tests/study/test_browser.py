"""End to end in a real browser: JupyterLab + headless Chromium run ``02_subregions.ipynb``.

The test starts JupyterLab on 127.0.0.1 (a free port, a random token, throwaway config/settings
folders, the notebook copied into a temporary root so autosave never touches the checkout) and
Debian's ``chromium`` headless with a fresh profile, drives it over the Chrome DevTools protocol
(``websocket-client``), runs all cells with JupyterLab's own ``notebook:run-all-cells`` command,
and checks in the DOM that:

* every code cell executed and none produced an error output;
* the region explorer widget rendered (its ``ferlib-region-explorer`` box with a face dropdown,
  sliders and a non-empty image);
* moving the yaw slider with the keyboard makes the kernel redraw the image (a new image arrives).

A screenshot is captured and checked to be a non-blank page. Every process the test starts
(JupyterLab with its kernel, Chromium) is stopped in ``finally`` blocks. The test is skipped only
when no ``chromium`` binary exists (``make chromium`` installs it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "02_subregions.ipynb"
EXPLORER_CLASS = "ferlib-region-explorer"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a process started with ``start_new_session=True`` and its process group."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params):
        self._id += 1
        msg_id = self._id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})

    def js(self, expression: str, await_promise: bool = False):
        res = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str, interval: float = 0.5):
        """Poll ``expression`` until it is truthy; fail naming ``what`` and the last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value and not (isinstance(value, str) and value.startswith("wait:")):
                return value
            time.sleep(interval)
        self.failure_screenshot()
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last state {value!r}")

    screenshot_path: Path | None = None

    def failure_screenshot(self) -> None:
        """Keep a screenshot of the page next to the test's logs (helps to see what the page showed)."""
        if self.screenshot_path is None:
            return
        try:
            shot = self.call("Page.captureScreenshot", format="png")
            self.screenshot_path.write_bytes(base64.b64decode(shot["data"]))
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


# JavaScript run inside JupyterLab (exposed as window.jupyterapp by expose_app_in_browser).
# The notebook panel is looked up among the main-area widgets (headless Chromium has no focus, so
# shell.currentWidget may be null) and activated so that notebook commands act on it.
JS_PANEL = """(() => { const app = window.jupyterapp; if (!app) return null;
  return Array.from(app.shell.widgets('main'))
    .find(w => w.sessionContext && w.content && w.content.widgets) || null; })()"""

JS_KERNEL_STATE = f"""(() => {{
  const app = window.jupyterapp; if (!app) return 'wait:no app';
  const w = {JS_PANEL}; if (!w) return 'wait:no notebook';
  if (app.shell.currentWidget !== w) app.shell.activateById(w.id);
  const s = w.sessionContext.session; if (!s || !s.kernel) return 'wait:no kernel';
  return s.kernel.status === 'idle' && w.content.widgets.length > 0 ? 'idle' : 'wait:' + s.kernel.status;
}})()"""

JS_RUN_STATE = f"""(() => {{
  const w = {JS_PANEL};
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const pending = cells.filter(c => c.model.executionCount === null).length;
  const errors = [];
  cells.forEach((c, i) => c.model.outputs.toJSON().forEach(o => {{
      if (o.output_type === 'error') errors.push(i + ': ' + o.ename + ': ' + o.evalue);
  }}));
  const status = w.sessionContext.session.kernel.status;
  if (errors.length) return JSON.stringify({{done: true, errors}});
  if (pending || status !== 'idle') return 'wait:' + pending + ' pending, kernel ' + status;
  return JSON.stringify({{done: true, errors, cells: cells.length}});
}})()"""

JS_EXPLORER = f"""(() => {{
  const box = document.querySelector('.{EXPLORER_CLASS}');
  if (!box) return 'wait:no explorer';
  const img = box.querySelector('img');
  if (!img || !img.src || !img.complete || img.naturalWidth === 0) return 'wait:no image';
  box.scrollIntoView();
  return JSON.stringify({{
    sliders: box.querySelectorAll('.widget-slider').length,
    dropdowns: box.querySelectorAll('select').length,
    handles: box.querySelectorAll('.noUi-handle').length,
    src: img.src, width: img.naturalWidth, height: img.naturalHeight,
  }});
}})()"""


def test_region_explorer_renders_and_reacts_in_jupyterlab(tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "no chromium binary found; install it with `make chromium` "
            "(apt-get install -y chromium) to run the JupyterLab browser test"
        )
    assert NOTEBOOK.exists(), f"{NOTEBOOK} missing: generate it from notebooks/src/02_subregions.py"

    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = tmp_path / "settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    # Render every cell in the DOM (no virtual scrolling) so DOM queries see the widget.
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(
        FERLIB_PROFILE="smoke",
        FERLIB_RUNS=str(tmp_path / "runs"),
        TQDM_DISABLE="1",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    lab_log = open(tmp_path / "jupyterlab.log", "wb")
    chrome_log = open(tmp_path / "chromium.log", "wb")
    lab = chrome = devtools = None
    try:
        lab = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            cwd=root,
            env=env,
            stdout=lab_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            assert lab.poll() is None, "JupyterLab exited early:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
            time.sleep(0.5)

        profile_dir = tmp_path / "chromium-profile"
        chrome = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile_dir}",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--window-size=1400,1000",
                "about:blank",
            ],
            env=env,
            stdout=chrome_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        active = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and active.read_text().strip()):
            assert chrome.poll() is None, "chromium exited early:\n" + (tmp_path / "chromium.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "chromium did not open its DevTools port within 60 s"
            time.sleep(0.2)
        cdp_port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{cdp_port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        devtools = DevTools(pages[0]["webSocketDebuggerUrl"])
        devtools.screenshot_path = tmp_path / "failure.png"
        devtools.call("Page.enable")
        devtools.call("Page.navigate", url=f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")

        devtools.wait_for(JS_KERNEL_STATE, 120, "JupyterLab to open the notebook with an idle kernel")
        # Drop the committed outputs so only live output counts, then run everything.
        devtools.js("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')", await_promise=True)
        devtools.js("window.jupyterapp.commands.execute('notebook:run-all-cells'); true")
        state = json.loads(devtools.wait_for(JS_RUN_STATE, 300, "all cells to run"))
        assert not state["errors"], f"cells raised in JupyterLab: {state['errors']}"
        assert state["cells"] >= 5

        info = json.loads(devtools.wait_for(JS_EXPLORER, 60, "the region explorer widget to render"))
        assert info["sliders"] >= 2, info  # yaw and at least one landmark slider
        assert info["dropdowns"] >= 1, info  # the face chooser
        assert info["width"] >= 200 and info["height"] >= 200, info

        # Move the yaw slider with the keyboard: the kernel must redraw the regions (new image).
        devtools.js(f"document.querySelector('.{EXPLORER_CLASS} .noUi-handle').focus(); true")
        for _ in range(5):
            for kind in ("keyDown", "keyUp"):
                devtools.call(
                    "Input.dispatchKeyEvent", type=kind, key="ArrowRight", code="ArrowRight", windowsVirtualKeyCode=39
                )
        new_src = devtools.wait_for(
            f"""(() => {{ const img = document.querySelector('.{EXPLORER_CLASS} img');
                 return img && img.complete && img.naturalWidth > 0 && img.src !== {json.dumps(info["src"])}
                        ? img.src : 'wait:same image'; }})()""",
            60,
            "the explorer image to change after moving the yaw slider",
        )
        assert new_src != info["src"]

        shot = devtools.call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        (tmp_path / "jupyterlab.png").write_bytes(png)
        from PIL import Image, ImageStat

        image = Image.open(io.BytesIO(png)).convert("L")
        assert image.size[0] >= 800
        assert ImageStat.Stat(image).stddev[0] > 10, "screenshot is blank"
    finally:
        if devtools is not None:
            try:
                devtools.call("Browser.close")
            except Exception:
                pass
            devtools.close()
        _stop(chrome)
        if lab is not None and lab.poll() is None:
            # Ask the server to shut its kernels down first (they run in their own sessions).
            try:
                req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST", data=b"")
                urllib.request.urlopen(req, timeout=10).close()
                lab.wait(20)
            except Exception:
                pass
        _stop(lab)
        lab_log.close()
        chrome_log.close()
