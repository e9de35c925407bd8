"""Script and style tags for the Vite-built islands, read from Vite's manifest."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Flask, current_app
from markupsafe import Markup, escape

DIST = Path(__file__).parent / "static" / "dist"


@cache
def _manifest(mtime: float) -> dict:
    return json.loads((DIST / ".vite" / "manifest.json").read_text("utf-8"))


def manifest() -> dict:
    path = DIST / ".vite" / "manifest.json"
    if not path.exists():
        raise RuntimeError(
            "app/static/dist is missing: build the page bundles with `npm run build --prefix "
            "designer` (make run and make test do it)"
        )
    return _manifest(path.stat().st_mtime)


def vite_tags(*entries: str) -> Markup:
    """<link> and <script type=module> tags for the named entries (src/pages/<name>.js)."""
    chunks = manifest()
    tags: list[str] = []
    seen: set[str] = set()
    for name in entries:
        chunk = chunks[f"src/pages/{name}.js"]
        for css in _css_of(chunks, f"src/pages/{name}.js", set()):
            if css not in seen:
                seen.add(css)
                tags.append(f'<link rel="stylesheet" href="/static/dist/{escape(css)}">')
        tags.append(f'<script type="module" src="/static/dist/{escape(chunk["file"])}"></script>')
    return Markup("\n".join(tags))


def _css_of(chunks: dict, key: str, visited: set[str]) -> list[str]:
    """The CSS of a chunk and of every chunk it imports: entries that share modules (bpmn-js
    in the diagram viewer and the designer) get their CSS split into the shared chunks."""
    if key in visited:
        return []
    visited.add(key)
    css: list[str] = []
    for imported in chunks[key].get("imports", []):
        css.extend(_css_of(chunks, imported, visited))
    css.extend(chunks[key].get("css", []))
    return css


def init_assets(app: Flask) -> None:
    app.jinja_env.globals["vite_tags"] = vite_tags
    app.jinja_env.globals["config_value"] = lambda name: current_app.config[name]
