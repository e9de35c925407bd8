"""Work-order pages: the list, one work order with its diagram, timeline, notes and files."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ticket_pages", __name__)
