"""At the site: device QR codes, check-in, photos, voice notes and spare parts from the phone."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("site", __name__)
