"""Fixtures of the report tests: a real headless Chromium, and a small real sweep to report on.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No WebDriver, no websocket library: Chromium reads NUL-terminated JSON commands on fd 3 and writes
replies and events on fd 4. :func:`open_page` loads one URL and returns what a report test checks —
console errors, uncaught exceptions, failed or non-file requests, the size of every figure, the page's
text length, horizontal overflow at the given width — and a PNG screenshot.

Chromium comes from Debian's ``chromium`` package (``scripts/setup.sh --test`` installs it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")

#: JavaScript returning what the tests check about the loaded page.
PROBE = """(() => {
  const figs = Array.from(document.querySelectorAll('figure svg')).map(e => {
    const r = e.getBoundingClientRect(); return [r.width, r.height, e.querySelectorAll('path,use,text').length];
  });
  return JSON.stringify({
    title: document.title,
    text_length: document.body ? document.body.innerText.trim().length : 0,
    figures: figs,
    captions: Array.from(document.querySelectorAll('figcaption')).map(e => e.innerText),
    scroll_width: document.documentElement.scrollWidth,
    inner_width: window.innerWidth,
    resources: performance.getEntriesByType('resource').map(e => e.name),
  });
})()"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    probe: dict = field(default_factory=dict)
    screenshot_png: bytes = b""


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int):
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg: dict = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._read(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)


def open_page(url: str, *, width: int = 1200, height: int = 900, settle_s: float = 0.3,
              chromium: str | None = None) -> PageResult:
    """Load ``url`` in a fresh headless Chromium at ``width`` × ``height`` CSS pixels and inspect it."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="clipbudget-chromium-")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def child_fds():  # fd 3: commands in, fd 4: replies out (moved high first, so that they cannot collide)
        import fcntl

        a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    args = [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
    proc = subprocess.Popen(args, preexec_fn=child_fds, pass_fds=(3, 4),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_child_r)
    os.close(from_child_w)
    pipe = _Pipe(proc, to_child_w, from_child_r)
    res = PageResult(url=url)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=60)["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                        "mobile": width < 600}, session=session)
        pipe.send("Page.navigate", {"url": url}, session=session)
        pipe.wait_event("Page.loadEventFired", timeout=60)
        time.sleep(settle_s)
        probe = pipe.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session)
        res.probe = json.loads(probe["result"]["value"])
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session,
                         timeout=60)
        res.screenshot_png = base64.b64decode(shot["data"])
        for e in pipe.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                res.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                res.console_errors.append(json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                res.console_errors.append(p["entry"].get("text", ""))
            elif m == "Network.loadingFailed":
                res.failed_requests.append(f"{p.get('errorText')} ({p.get('type')})")
            elif m == "Network.requestWillBeSent":
                res.requests.append(p.get("request", {}).get("url", ""))
            elif m == "Network.responseReceived" and p.get("response", {}).get("status", 200) >= 400:
                res.failed_requests.append(f"HTTP {p['response']['status']} {p['response'].get('url')}")
        try:
            pipe.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_child_w)
        os.close(from_child_r)
        shutil.rmtree(profile, ignore_errors=True)
    return res


def save_artifact(name: str, png: bytes) -> Path:
    """Keep a screenshot as a test artifact under ``$CLIPBUDGET_ARTIFACTS`` (default ``build/test-artifacts/``, git-ignored)."""
    root = Path(os.environ.get("CLIPBUDGET_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_bytes(png)
    return path


def require_chromium() -> str:
    """The Chromium executable; skip locally, **fail** under ``CI=true`` when it is missing."""
    import pytest

    exe = find_chromium()
    if exe:
        return exe
    message = "no chromium on PATH; install it with: bash scripts/setup.sh --test (apt-get install chromium, as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " — CI must run the browser tests, not skip them", pytrace=False)
    pytest.skip(message)


_SWEEPS: dict[bool, Path] = {}


def shared_sweep() -> Path:
    """:func:`build_sweep` of completed runs, built once per test session (treat it as read-only)."""
    if True not in _SWEEPS or not (_SWEEPS[True] / "manifest.json").is_file():
        _SWEEPS[True] = build_sweep(Path(tempfile.mkdtemp(prefix="clipbudget-report-sweep-")))
    return _SWEEPS[True]


def build_sweep(root: Path, *, completed: bool = True) -> Path:
    """A real debug-executor sweep under ``root``: five tiny runs on Fashion-MNIST that complete (one model at
    three sample counts, one at quality 0.5, a second model), or (``completed=False``) two whose data is
    corrupt and fail."""
    from runners.sweep import submit
    from tests._data_fixtures import build_demo_data
    from tests._sweep_fixtures import TINY_RUN, corrupt_shards, write_grid

    shards, evals = build_demo_data(None, n_train=2000, n_eval=500)
    if completed:
        runs = [{**TINY_RUN, "samples_seen": n} for n in (16, 32, 64)]  # enough for `clipbudget fit` alone
        runs += [{**TINY_RUN, "quality_fraction": 0.5}, {**TINY_RUN, "model": "tiny-vit-s-28"}]
        train = shards
    else:
        runs = [{**TINY_RUN, "seed": s} for s in (0, 1)]
        train = corrupt_shards(root)
    grid = write_grid(root / "grid.yaml", runs, defaults={"train_data": str(train), "eval_data": str(evals)},
                      name="report-test" if completed else "report-test-failed")
    sweep = root / "sweep"
    try:
        submit(grid, sweep, executor="debug")
    except Exception:  # noqa: BLE001 - failed runs may raise out of the debug executor; the folder is what counts
        if completed:
            raise
    return sweep
