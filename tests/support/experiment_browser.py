"""Helpers for running built experiments in headless Chromium: jsPsych from npm, a static loopback
server, the collector on 127.0.0.1, and simulated participants driven side by side."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from lwise_build.config.experiment import JSPSYCH_PACKAGES

from .headless import skip_or_fail


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
    """A static loopback HTTP server: ``/lib/`` is node_modules, ``/<name>/`` a mounted folder;
    ``POST /save`` keeps each JSON body in ``posted``; ``fail[path] = n`` answers the next n GETs
    of that path with 503; ``gets`` logs (time, path) of every GET."""

    def __init__(self, lib: Path):
        self.mounts: dict[str, Path] = {"lib": lib}
        self.posted: list[dict] = []
        self.fail: dict[str, int] = {}
        self.gets: list[tuple[float, str]] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                head, _, rest = path.split("?")[0].lstrip("/").partition("/")
                return str(server.mounts.get(head, Path("/nonexistent")) / rest)

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                path = self.path.split("?")[0]
                server.gets.append((time.monotonic(), path))
                if self.path.startswith("/favicon.ico") or server.fail.get(path, 0) > 0:
                    if path in server.fail:
                        server.fail[path] -= 1
                    self.send_response(503 if path in server.fail else 204)
                    self.end_headers()
                    return
                super().do_GET()

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.posted.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

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


class Collector:
    """``lwise-build serve``'s app on 127.0.0.1 (a free port) in a thread, stopped by ``close``."""

    def __init__(self, experiment: Path, store: Path, node_modules: Path):
        from lwise_build.collector import bind, open_collector, server

        self.app, self.store = open_collector(experiment, store, node_modules)
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.server = server(self.app, "127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()


#: What the page shows now, once per screen: an enabled button group, key prompt or feedback not
#: yet handled (null while nothing can be answered).
STATE = """() => {
  if (document.getElementById('lwise-complete')) return {screen: 'done', text: document.body.innerText};
  const img = document.querySelector('.lwise-image'), svg = document.querySelector('.lwise-shape');
  const seen = {image: img && img.getAttribute('src'), shape: svg && svg.dataset.shape,
                feedback: !!document.querySelector('.lwise-feedback'), text: document.body.innerText.slice(0, 300)};
  const g = document.querySelector('#jspsych-html-button-response-btngroup:not([data-done])');
  if (g) {
    const b = [...g.querySelectorAll('button')];
    if (!b.length || b.some(x => x.disabled)) return null;
    g.dataset.done = '1';
    const at = b.map(x => { const r = x.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; });
    const box = img && img.getBoundingClientRect();
    return {screen: seen.feedback ? 'feedback' : 'buttons', names: b.map(x => x.textContent), at: at,
            image_box: box && [box.x, box.y, box.width, box.height], ...seen};
  }
  const k = document.querySelector('#jspsych-html-keyboard-response-stimulus:not([data-done])');
  const prompt = k && k.querySelector('.lwise-prompt');
  if (!prompt || k.querySelector('.lwise-feedback')) return null;
  k.dataset.done = '1';
  return {screen: 'keys', prompt: prompt.textContent, ...seen};
}"""

Policy = Callable[[dict[str, Any], np.random.Generator], int | None]


class Participant:
    """One simulated participant in a browser page, advanced a screen at a time by :meth:`step`.

    ``policy(screen, rng)`` returns the choice index (None: no answer); feedback is dismissed with
    the space bar. ``events`` maps a screen index to a callable run before answering it (e.g. a
    screenshot or a kill)."""

    def __init__(self, name: str, page: Any, url: str, policy: Policy, seed: int):
        self.name, self.page, self.url, self.policy = name, page, url, policy
        self.rng = np.random.default_rng(seed)
        self.screens: list[dict[str, Any]] = []
        self.events: dict[int, Callable[[Participant, dict], None]] = {}
        self.done = False
        self.final: dict[str, Any] | None = None
        self.on_done: Callable[[Participant, dict], None] | None = None

    def open(self) -> None:
        self.page.goto(self.url, wait_until="commit")

    def step(self) -> bool:
        """Answer the current screen if one is waiting; True when something happened."""
        if self.done:
            return False
        try:  # never blocks for long: a page that stops answering fails the test instead of hanging it
            s = self.page.wait_for_function(f"() => ({STATE})() || {{screen: 'none'}}", timeout=15_000).json_value()
        except PlaywrightTimeout:
            raise AssertionError(f"{self.name}: the page stopped answering after {len(self.screens)} screens") from None
        except Exception:  # noqa: BLE001 - navigating (a reload or the redirect): try again later
            return False
        if s["screen"] == "none":
            return False
        if s["screen"] == "done":
            self.done, self.final = True, s
            if self.on_done:
                self.on_done(self, s)
            return True
        s["index"] = len(self.screens)
        self.screens.append(s)
        event = self.events.pop(s["index"], None)
        if event is not None:
            event(self, s)
            if self.done or s.get("abandon"):
                return True
        if s["screen"] == "feedback":
            self.page.keyboard.press(" ")
            return True
        choice = self.policy(s, self.rng)
        if choice is not None:
            answer(self.page, s, choice)
        return True


def run_side_by_side(people: list[Participant], timeout_s: float = 240) -> None:
    """Open every page, then advance them in turn until each reaches its end screen."""
    for p in people:
        p.open()
    deadline = time.monotonic() + timeout_s
    while not all(p.done for p in people):
        if time.monotonic() > deadline:
            stuck = {p.name: (p.screens[-1] if p.screens else None) for p in people if not p.done}
            raise AssertionError(f"participants did not finish: {stuck}")
        if not any([p.step() for p in people]):
            time.sleep(0.005)


def answer(page: Any, screen: dict[str, Any], choice: int) -> None:
    """Click the button where it is, or press the key (after the click delay; ``early_key`` is
    pressed first, during the delay, and must be ignored)."""
    if screen["screen"] in ("buttons", "feedback"):
        page.mouse.click(*screen["at"][choice])
        return
    if screen.get("early_key"):
        page.keyboard.press(screen["early_key"])
    page.wait_for_timeout(screen["delay"] + 40)
    page.keyboard.press(screen["keys"][choice])


def images_of(experiment: Path) -> dict[str, dict[str, Any]]:
    """image path -> the trial variables of a trial that shows it (id, label, budget)."""
    out = {}
    for f in sorted((experiment / "sequences").rglob("*.json")):
        for t in json.loads(f.read_text()):
            if t["image"]:
                out[t["image"]] = t
    return out


#: Times (performance.now) at which feedback appeared and disappeared, recorded in the page.
FEEDBACK_CLOCK = """() => {
  window.lwiseFeedbackTimes = [];
  let on = null;
  new MutationObserver(() => {
    const shown = !!document.querySelector('.lwise-feedback');
    if (shown && on === null) on = performance.now();
    if (!shown && on !== null) { window.lwiseFeedbackTimes.push([on, performance.now()]); on = null; }
  }).observe(document.body, {childList: true, subtree: true});
}"""
