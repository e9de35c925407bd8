"""Helper functions that diagram expressions may call (timers, due dates, assignments)."""

from __future__ import annotations

from app.rules.expressions import register_helper


def iso_hours(hours: float) -> str:
    """An ISO-8601 duration for a number of hours, in whole minutes: 0.75 -> 'PT45M'."""
    minutes = max(round(float(hours) * 60), 0)
    return f"PT{minutes}M"


def register_builtin_helpers() -> None:
    register_helper("iso_hours", iso_hours)
