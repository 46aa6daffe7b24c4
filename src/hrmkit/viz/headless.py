"""Open a viewer page in headless Chromium: run its self-test, or save a screenshot.

No browser-automation package is needed: the page checks itself when opened with ``#selftest``
(``templates/selftest.js``) and writes a JSON verdict into its DOM, which ``--dump-dom`` prints.
Console messages that Chromium logs on stderr are scanned for errors as a second witness.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hrmkit.files import write_atomically

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")
VERDICT = re.compile(r'<pre id="selftest-result"[^>]*>(.*?)</pre>', re.S)
# Chromium logs every console message of a page as `...:INFO:CONSOLE:<line>] "text", source: <url>`
# (older builds: `CONSOLE(<line>)]`), whatever its level; uncaught exceptions read "Uncaught ...".
# console.error itself is caught inside the page (templates/errors.js), so its level is not needed here.
CONSOLE_ERROR = re.compile(r'CONSOLE[:(]\d+\)?\] "Uncaught')


class BrowserError(RuntimeError):
    """Chromium is missing or failed to run; the message is one line."""


def find_chromium() -> str | None:
    """The Chromium to use: $HRM_CHROMIUM when set, else the first of CHROMIUM_NAMES on PATH."""
    chosen = os.environ.get("HRM_CHROMIUM")
    if chosen:
        return chosen if shutil.which(chosen) else None
    return next((found for found in map(shutil.which, CHROMIUM_NAMES) if found), None)


def _run_chromium(arguments: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise BrowserError("Chromium not found: install it (Debian: apt-get install chromium) or set HRM_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="hrm-viz-chromium-") as profile:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                   *arguments]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish within {timeout:.0f} s") from None


def _url(page: str | Path, fragment: str = "") -> str:
    return Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")


def self_test(page: str | Path, timeout: float = 90.0) -> dict[str, Any]:
    """Open ``page`` with ``#selftest``; return its verdict plus ``console_errors`` from Chromium's log.

    ``ok`` is true only when the page's own checks passed, it caught no error, and Chromium logged
    no console error. A page whose scripts never ran gives ``ok: false`` with a failure saying so.
    """
    result = _run_chromium(["--virtual-time-budget=5000", "--dump-dom", _url(page, "selftest")], timeout)
    console_errors = [line.strip() for line in result.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    found = VERDICT.search(result.stdout)
    if found is None:
        raise BrowserError(f"Chromium printed no page (exit {result.returncode}): {result.stderr.strip()[-300:]}")
    text = html.unescape(found.group(1)).strip()
    if not text:
        verdict: dict[str, Any] = {"ok": False, "failures": ["the self-test wrote no verdict (scripts did not run)"]}
    else:
        verdict = json.loads(text)
    verdict["console_errors"] = console_errors
    verdict["ok"] = bool(verdict.get("ok")) and not console_errors
    verdict["cards_in_dom"] = len(re.findall(r'<section class="card[ "]', result.stdout))
    return verdict


def screenshot(page: str | Path, png: str | Path, width: int = 1400, height: int = 1000, fragment: str = "",
               timeout: float = 90.0) -> Path:
    """Save what the page shows in a ``width`` x ``height`` window (opened with ``#fragment``) as a PNG."""
    png = Path(png)
    with tempfile.TemporaryDirectory(prefix="hrm-viz-shot-") as folder:
        shot = Path(folder) / "shot.png"
        result = _run_chromium(["--virtual-time-budget=5000", f"--window-size={width},{height}",
                                f"--screenshot={shot}", _url(page, fragment)], timeout)
        if not shot.is_file():
            raise BrowserError(f"Chromium wrote no screenshot (exit {result.returncode}): {result.stderr.strip()[-300:]}")
        png.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(png, lambda file: file.write(shot.read_bytes()))
    return png
