"""Requester portal: report a fault, my work orders, acceptance and rating."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("portal", __name__)
