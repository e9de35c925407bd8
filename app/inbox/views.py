"""Inbox pages for handlers, reviewers and dispatchers: my tasks, my groups' tasks, task forms."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inbox_pages", __name__)
