"""What the pages say instead of a due time that the SLA clock holds at ``clock.NEVER``: the
clock is paused, its deadline is unknown (a year without holiday data), or it stopped short of
the timer's point (the target was met: the timer will not fire)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.engine.models import ProcessDefinition
from app.sla.bpmn_timers import sla_timers
from app.sla.clock import ledger


def held_notes(
    db_session: Session, ticket_id: int, definition: ProcessDefinition | None
) -> dict[str | None, str]:
    """By SLA timer element id, why its due time is held; under None, the note for a user
    task's due date held by the clock (only a pause holds it)."""
    clocks = {row["kind"]: row for row in ledger(db_session, ticket_id)}

    def note(kind: str) -> str:
        row = clocks.get(kind)
        if row is not None and row["deadline_unknown"]:
            return _(
                "Deadline unknown: no holiday data for %(year)s", year=row["missing_holiday_year"]
            )
        if row is not None and row["state"] == "stopped":
            return _("Will not fire: the target was met")
        return _("Paused")

    timers = sla_timers(definition) if definition is not None else {}
    return {None: _("Paused")} | {element: note(timer.kind) for element, timer in timers.items()}
