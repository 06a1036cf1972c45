#!/usr/bin/env python3
"""Screenshots of the project's JupyterLab set-up, taken by a headless Chromium against a loopback ``jupyter lab``.

What it does, on a fresh clone of the checkout (the checkout itself is never written to):

1. installs the project's JupyterLab settings (``jupyter/labconfig``) and git's notebook filter in the clone,
   as ``make env`` does, and starts ``jupyter lab`` on 127.0.0.1 with a random token;
2. double-clicks ``notebooks/<notebook>.py`` in Lab's file browser and checks that it opens as a notebook
   (screenshot 1);
3. runs every cell (Run → Run All Cells), saves (Ctrl+S), and checks that git stores nothing new: the saved
   ``.ipynb`` has outputs, ``git diff`` of the clone is empty;
4. reloads Lab, which reopens the saved notebook, and checks that no "Error displaying widget" and no failed
   (red) progress bar is shown; screenshots of the cell holding ``--focus`` (2) and of the last cell (3).

Usage (needs ``chromium`` on the PATH, e.g. ``apt-get install chromium``, and the shared data)::

    .venv/bin/python tools/jupyterlab_screenshots.py --out docs/images

Each PNG is written with a 96-colour palette (about 80 KB).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["Browser", "main"]

ROOT = Path(__file__).resolve().parent.parent
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    start = time.time()
    while time.time() - start < timeout:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Browser:
    """A page of a headless Chromium, driven through the DevTools protocol."""

    def __init__(self, port: int) -> None:
        import websocket

        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params):
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 120):
        start = time.time()
        while time.time() - start < timeout:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for: {expression[:120]}")

    def click(self, x: float, y: float, count: int = 1) -> None:
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for c in range(1, count + 1):
            for kind in ("mousePressed", "mouseReleased"):
                self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=c)

    def click_text(self, selector: str, text: str, *, count: int = 1, prefix: bool = False) -> None:
        """Click the centre of the first ``selector`` element whose text is (or starts with) ``text``."""
        test = "startsWith" if prefix else "includes"
        where = self.wait(f"""(() => {{ const el = [...document.querySelectorAll({json.dumps(selector)})]
            .find(e => e.textContent.trim().{test}({json.dumps(text)})); if (!el) return null;
            const b = el.getBoundingClientRect(); return [b.x + Math.min(60, b.width / 2), b.y + b.height / 2]; }})()""",
                          timeout=30)
        self.click(*where, count=count)

    def ctrl_key(self, key: str) -> None:
        code = ord(key.upper())
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=f"Key{key.upper()}", modifiers=2,
                      windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)

    def screenshot(self, path: Path) -> None:
        from PIL import Image
        import io

        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        image = Image.open(io.BytesIO(png)).convert("RGB")
        image.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
        print(f"  {path} ({path.stat().st_size // 1024} KB)")


def _notebook_state(browser: Browser) -> dict:
    return browser.js(f"""(() => {{ const nb = document.querySelector('{PANEL}');
        const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
        return {{running: prompts.filter(p => p === '[*]:').length, last: prompts[prompts.length - 1],
                 idle: document.body.innerText.includes('| Idle'),
                 widget_errors: (nb.innerText.match(/Error displaying widget/g) || []).length,
                 failed_bars: nb.querySelectorAll('.progress-bar-danger').length,
                 errors: [...nb.querySelectorAll('.jp-OutputArea-output')].filter(
                     e => e.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
                          && e.innerText.includes('Traceback')).length}}; }})()""")


def _scroll_to(browser: Browser, text: str | None) -> None:
    """Scroll the cell whose source holds ``text`` to the top, or the last cell to the bottom."""
    if text is None:
        browser.js(f"(() => {{ const c = [...document.querySelectorAll('{PANEL} .jp-CodeCell')]; "
                   "c[c.length - 1].scrollIntoView({block: 'end'}); })()")
    else:
        browser.js(f"(() => {{ const c = [...document.querySelectorAll('{PANEL} .jp-CodeCell')]"
                   f".find(e => e.innerText.includes({json.dumps(text)})); c.scrollIntoView({{block: 'start'}}); }})()")
    time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", default="02_closed_form_fit", help="notebooks/<notebook>.py to open and run")
    parser.add_argument("--focus", default="competitor_reports = {}",
                        help="text of the cell shown in screenshot 2 (default: notebook 02's trained competitors)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder of the PNGs")
    parser.add_argument("--data-dir", default=os.environ.get("INFAE_DATA_DIR") or str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed for running the notebook")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("chromium is not on the PATH (Debian: apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="infae-lab-shots-"))
    clone = scratch / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for key, value in (("clean", f"{sys.executable} tools/notebook_filter.py"), ("smudge", "cat"),
                       ("required", "true")):
        subprocess.run(["git", "-C", str(clone), "config", f"filter.notebook-outputs.{key}", value], check=True)
    config_path = scratch / "etc-jupyter"  # where `make env` puts it: the environment's etc/jupyter
    shutil.copytree(clone / "jupyter", config_path)
    settings = scratch / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (Lab 4 renders only the visible ones by default), so that cells can be scrolled to
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    token, lab_port, cdp_port = secrets.token_hex(16), _free_port(), _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(scratch / "jupyter-home"), JUPYTER_CONFIG_PATH=str(config_path),
               JUPYTERLAB_SETTINGS_DIR=str(scratch / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
               PYTHONPATH=str(clone), INFAE_DATA_DIR=args.data_dir, INFAE_RUNS_DIR=str(scratch / "runs"),
               INFAE_FIGURES_DIR=str(scratch / "figures"))
    jupyter = Path(sys.executable).with_name("jupyter")
    lab = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                            f"--port={lab_port}", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={clone}"], env=env, cwd=clone, stdout=subprocess.DEVNULL,
                           stderr=open(scratch / "lab.log", "wb"))
    chrome = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                               f"--remote-debugging-port={cdp_port}", "--remote-debugging-address=127.0.0.1",
                               f"--user-data-dir={scratch / 'chromium'}", "--window-size=1400,900", "about:blank"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{lab_port}/api/status?token={token}", 120)
        _wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 60)
        browser = Browser(cdp_port)
        browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
        lab_url = f"http://127.0.0.1:{lab_port}/lab/tree/notebooks?token={token}"
        browser.call("Page.navigate", url=lab_url)

        print(f"1. double-click notebooks/{args.notebook}.py")
        browser.click_text(".jp-DirListing-item", f"{args.notebook}.py", count=2)
        browser.wait(f"document.querySelector('{PANEL} .jp-Cell') !== null")
        if browser.js("document.querySelectorAll('.jp-FileEditor').length"):
            raise SystemExit(f"{args.notebook}.py opened in the text editor, not as a notebook")
        browser.wait("document.body.innerText.includes('| Idle')", timeout=300)
        browser.js("(() => { const b = [...document.querySelectorAll('button')]"
                   ".find(e => e.textContent.trim() === 'No'); if (b) b.click(); })()")  # Lab's news prompt
        time.sleep(2)
        browser.screenshot(args.out / "jupyterlab-1-opened-by-double-click.png")

        print("2. Run → Run All Cells, then save")
        browser.click_text(".lm-MenuBar-item", "Run")
        browser.click_text(".lm-Menu-item", "Run All Cells", prefix=True)
        start = time.time()
        time.sleep(5)
        while True:
            state = _notebook_state(browser)
            if state["errors"]:
                raise SystemExit(f"a cell failed: {state}")
            if not state["running"] and state["last"] not in ("[ ]:", "[*]:") and state["idle"]:
                break
            if time.time() - start > args.timeout:
                raise SystemExit(f"the notebook did not finish within {args.timeout:.0f} s: {state}")
            time.sleep(2)
        print(f"   ran in {time.time() - start:.0f} s: {state}")
        browser.click(700, 400)
        browser.ctrl_key("s")
        browser.wait("!document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=60)
        saved = json.loads((clone / "notebooks" / f"{args.notebook}.ipynb").read_text(encoding="utf-8"))
        n_outputs = sum(len(c.get("outputs", [])) for c in saved["cells"])
        diff = subprocess.run(["git", "-C", str(clone), "diff", "--stat"], capture_output=True, text=True).stdout
        if not n_outputs or diff.strip():
            raise SystemExit(f"expected a saved notebook with outputs and an empty git diff: {n_outputs} outputs, "
                             f"diff {diff!r}")
        print(f"   saved with {n_outputs} outputs; git diff of the clone is empty")

        print("3. reload Lab: the saved notebook reopens")
        browser.call("Page.navigate", url=lab_url)
        browser.wait(f"document.querySelector('{PANEL} .jp-OutputArea-output') !== null", timeout=180)
        time.sleep(5)
        state = _notebook_state(browser)
        if state["widget_errors"] or state["failed_bars"]:
            raise SystemExit(f"the reopened notebook shows widget errors or failed bars: {state}")
        print(f"   no widget error, no failed bar: {state}")
        _scroll_to(browser, args.focus)
        browser.screenshot(args.out / "jupyterlab-2-finished-bars-after-reopening.png")
        _scroll_to(browser, None)
        browser.screenshot(args.out / "jupyterlab-3-run-to-the-end.png")
    finally:
        for process in (chrome, lab):
            process.terminate()
        for process in (chrome, lab):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
