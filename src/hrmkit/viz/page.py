"""Assemble one self-contained HTML page: the shell, its styles and scripts, and the data, all inline.

Nothing is fetched when the page opens (no server, no network, no CDN), so it works from disk,
from an e-mail attachment or an air-gapped machine. The templates live in ``viz/templates/``.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from hrmkit.files import atomic_write_text

# Loaded by every page, in this order: error capture must come before anything that can fail,
# and the self-test after everything it checks.
HEAD_SCRIPT = "errors.js"
SHARED_SCRIPTS = ("draw.js",)
SELF_TEST_SCRIPT = "selftest.js"


def template(name: str) -> str:
    return resources.files("hrmkit.viz").joinpath("templates", name).read_text(encoding="utf-8")


def embedded_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it early or start a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _inline_script(name: str) -> str:
    source = template(name)
    if "</script" in source.lower():  # would end the element early; templates must avoid it
        raise ValueError(f"template {name} contains '</script'")
    return f"<script>/* {name} */\n{source}</script>"


def render_page(title: str, scripts: list[str], data: dict[str, Any]) -> str:
    """The page's HTML: ``scripts`` (template names) run in order after the shared ones."""
    names = [*SHARED_SCRIPTS, *scripts, SELF_TEST_SCRIPT]
    return (
        template("page.html")
        .replace("<!--TITLE-->", html.escape(title))
        .replace("<!--HEAD-SCRIPT-->", _inline_script(HEAD_SCRIPT))
        .replace("<!--STYLE-->", f"<style>\n{template('page.css')}</style>")
        .replace("<!--DATA-->", f'<script id="viz-data" type="application/json">{embedded_json(data)}</script>')
        .replace("<!--SCRIPTS-->", "\n".join(_inline_script(name) for name in names))
    )


def write_page(path: str | Path, page_html: str) -> Path:
    """Write the page under a temporary name and rename it, so a reader never sees half a page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page_html)
    return path
