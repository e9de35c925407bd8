"""Redirect targets taken from requests, kept on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import url_for


def safe_next(target: str | None) -> str:
    # Only paths on this site: an absolute URL (or //host) here would be an open redirect.
    if target and not urlsplit(target).netloc and target.startswith("/") and "\\" not in target:
        return target
    return url_for("pages.home")
