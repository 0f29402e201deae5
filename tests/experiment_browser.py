"""Helpers for running built experiments in headless Chromium: jsPsych from npm, a loopback
server, and a simulated participant that answers with a known policy."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from headless import skip_or_fail

from lwise_build.config.experiment import JSPSYCH_PACKAGES


def npm_install(folder: Path) -> Path:
    """``npm install`` the pinned jsPsych packages into ``folder``; returns its node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        skip_or_fail("npm not installed (apt-get install -y npm)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "lwise-test-jspsych", "private": true}\n')
    specs = [f"{pkg}@{ver}" for pkg, ver in JSPSYCH_PACKAGES.items()]
    try:
        res = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *specs], cwd=folder,
                             capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        skip_or_fail("npm install timed out (registry unreachable?)")
    if res.returncode != 0:
        skip_or_fail(f"npm install failed: {res.stderr.strip().splitlines()[-1:]}")
    return folder / "node_modules"


class Server:
    """A loopback HTTP server: ``/lib/`` is node_modules, ``/<name>/`` a mounted folder;
    ``POST /save`` keeps each body in ``posted`` (with its ``file`` query value)."""

    def __init__(self, lib: Path):
        self.mounts: dict[str, Path] = {"lib": lib}
        self.posted: list[tuple[str, bytes]] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                head, _, rest = path.split("?")[0].lstrip("/").partition("/")
                return str(server.mounts.get(head, Path("/nonexistent")) / rest)

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                if self.path.startswith("/favicon.ico"):  # pages without an icon link (the redirect target)
                    self.send_response(204)
                    self.end_headers()
                    return
                super().do_GET()

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                query = self.path.partition("?")[2]
                server.posted.append((query, body))
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


#: What the page shows now, once per screen: an enabled button group or key prompt not yet seen.
STATE = """() => {
  if (document.getElementById('lwise-complete')) return {screen: 'done'};
  const img = document.querySelector('.lwise-image'), svg = document.querySelector('.lwise-shape');
  const seen = {image: img && img.getAttribute('src'), shape: svg && svg.dataset.shape};
  const g = document.querySelector('#jspsych-html-button-response-btngroup:not([data-done])');
  if (g) {
    const b = [...g.querySelectorAll('button')];
    if (!b.length || b.some(x => x.disabled)) return null;
    g.dataset.done = '1';
    const at = b.map(x => { const r = x.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; });
    return {screen: 'buttons', names: b.map(x => x.textContent), at: at, ...seen};
  }
  const k = document.querySelector('#jspsych-html-keyboard-response-stimulus:not([data-done])');
  const prompt = k && k.querySelector('.lwise-prompt');
  if (!prompt || k.querySelector('.lwise-feedback')) return null;
  k.dataset.done = '1';
  return {screen: 'keys', prompt: prompt.textContent, ...seen};
}"""

Policy = Callable[[dict[str, Any], np.random.Generator], int | None]


def run_participant(page: Any, url: str, policy: Policy, seed: int, *, download: Path | None = None,
                    timeout_ms: int = 20_000) -> list[dict[str, Any]]:
    """Go through a whole session; ``policy(screen, rng)`` returns the choice index (None: no
    answer; it may set ``screen["shoot"]`` to a path for a screenshot of the screen, and
    ``screen["shoot_feedback"]`` for one of the feedback that follows the answer).
    Returns the screens seen; saves the download into ``download`` (a folder)."""
    rng = np.random.default_rng(seed)
    screens: list[dict[str, Any]] = []
    page.goto(url)
    page.wait_for_load_state("load")
    info = page.evaluate("() => { const e = window.lwiseExperiment; const c = e.config.conditions[e.assignment.condition];"
                         " return {assignment: e.assignment, layout: c.sequences[e.assignment.sequence],"
                         " keys: e.config.params.keys, delay: e.config.params.click_delay_ms}; }")

    def loop() -> None:
        while True:
            s = page.wait_for_function(STATE, polling=5, timeout=timeout_ms).json_value()
            if s["screen"] == "done":
                return
            s.update(info, index=len(screens))
            screens.append(s)
            choice = policy(s, rng)
            if s.get("shoot"):
                page.screenshot(path=str(s["shoot"]))
            if choice is not None:
                answer(page, s, choice)
                if s.get("shoot_feedback"):
                    page.wait_for_selector(".lwise-feedback", timeout=timeout_ms)
                    page.screenshot(path=str(s["shoot_feedback"]))

    if download is None:
        loop()
    else:
        with page.expect_download(timeout=timeout_ms) as dl:
            loop()
        download.mkdir(parents=True, exist_ok=True)
        dl.value.save_as(download / dl.value.suggested_filename)
    return screens


def answer(page: Any, screen: dict[str, Any], choice: int) -> None:
    """Click the button, or press the key (after the click delay; ``early_key`` is pressed first,
    during the delay, and must be ignored)."""
    if screen["screen"] == "buttons":
        page.mouse.click(*screen["at"][choice])  # a real click where the button is
        return
    if screen.get("early_key"):
        page.keyboard.press(screen["early_key"])
    page.wait_for_timeout(screen["delay"] + 40)
    page.keyboard.press(screen["keys"][choice])


def images_of(experiment: Path) -> dict[str, dict[str, Any]]:
    """image path -> the trial variables of a main trial that shows it (id, label, budget)."""
    out = {}
    for f in sorted((experiment / "sequences").rglob("*.json")):
        for t in json.loads(f.read_text()):
            if t["image"]:
                out[t["image"]] = t
    return out
