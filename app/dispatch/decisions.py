"""One dispatch decision's parts: rank a work order's candidates (Recommendation), and give
a locked task to an engineer with the DispatchDecision that keeps the ranking."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import Session, make_transient_to_detached

from app.dispatch.fastrank import TableRanking, rank_table
from app.dispatch.models import DispatchDecision
from app.dispatch.people import CandidateTable
from app.dispatch.roster import candidate_table, verify
from app.dispatch.scoring import Job, Ranking
from app.dispatch.work import Settings, groups_of, job_of, job_summary, process_data, settings_for
from app.engine import reassign_task_with
from app.engine.models import HumanTask
from app.errors import Conflict
from app.tickets.models import Ticket
from app.timeutil import utcnow


@dataclass
class Recommendation:
    """A ranking for one work order, with what it was made for."""

    ticket: Ticket
    task: HumanTask | None
    job: Job
    settings: Settings
    candidates: int
    result: TableRanking
    # username -> {"name", "position_source"} of the engineers kept in the ranking
    people: dict[str, dict]

    @property
    def ranking(self) -> Ranking:
        return self.result.ranking

    def stored(self) -> dict:
        """The ranking as a decision keeps it (JSON-safe), each row with the engineer's name
        and, for the ranked, where their position came from."""
        found = self.result.as_dict()
        for row in found["ranked"]:
            row.update(self.people.get(row["username"], {}))
        for row in found["excluded"]:
            row["name"] = self.people.get(row["username"], {}).get("name", row["username"])
        return {
            **found,
            "candidates": self.candidates,
            "job": job_summary(self.job),
            "weights": asdict(self.settings.weights),
            "mode": self.settings.mode,
        }


def rank_task(
    *,
    db_session: Session,
    ticket: Ticket,
    task: HumanTask | None,
    now: datetime,
    data: dict | None = None,
    always: str | None = None,
) -> Recommendation:
    """Load the candidates of the task's groups and rank them for the work order's job."""
    if data is None:
        data = process_data(
            db_session, ticket.process_instance_id or getattr(task, "instance_id", None)
        )
    groups = groups_of(task, data)
    if not groups:
        raise Conflict(
            f"工单 {ticket.number or ticket.id} 还没有责任组，请先完成分级",
            f"work order {ticket.number or ticket.id} has no responsible group yet; triage it first",
        )
    job = job_of(db_session, ticket, task, data)
    return rank_job(db_session, ticket, task, job, None, groups, now=now, always=always)


def rank_job(
    db_session: Session,
    ticket: Ticket,
    task: HumanTask | None,
    job: Job,
    settings: Settings | None,
    groups: list[str],
    *,
    now: datetime,
    always: str | None = None,
) -> Recommendation:
    """Rank the engineers of ``groups`` for ``job`` from the roster snapshot; the one chosen
    (the best, or the dispatcher's choice) is checked on exact counts. Without ``settings``,
    the task's (settings_for, after the look: the snapshot holds the group configs)."""
    look = {
        "db_session": db_session,
        "now": now,
        "group_codes": groups,
        "skill_codes": list(job.required_skills),
        "device_no": job.device_no,
    }
    table = candidate_table(**look)
    if settings is None:
        settings = settings_for(db_session, task, groups)
    rec = rank_in(table, ticket, task, job, settings, now=now, always=always)
    chosen = [always] if always is not None else [b.username for b in rec.ranking.ranked[:1]]
    if chosen and not verify(db_session, table, chosen):
        table = candidate_table(**look, reload_open=True)
        rec = rank_in(table, ticket, task, job, settings, now=now, always=always)
    return rec


def rank_in(
    table: CandidateTable,
    ticket: Ticket,
    task: HumanTask | None,
    job: Job,
    settings: Settings,
    *,
    now: datetime,
    always: str | None = None,
) -> Recommendation:
    """Rank the engineers of an already loaded table for one job."""
    result = rank_table(table, job, now=now, weights=settings.weights, always=always)
    kept = [b.username for b in result.ranking.ranked]
    kept += [name for name, _reason in result.ranking.excluded]
    people = {}
    for username in kept:
        i = table.index(username)
        people[username] = {"name": table.names[i], "position_source": table.sources[i]}
    return Recommendation(ticket, task, job, settings, len(table), result, people)


def save_decision(
    db_session: Session,
    rec: Recommendation,
    task: HumanTask,
    *,
    mode: str,
    chosen: str,
    decided_by: str | None,
    reason: str | None = None,
) -> DispatchDecision:
    decision = _decision(rec, task, mode, chosen, decided_by, reason)
    db_session.add(decision)
    return decision


def dispatch_to(
    db_session: Session,
    rec: Recommendation,
    task: HumanTask,
    username: str,
    *,
    mode: str,
    decided_by: str | None,
    reason: str | None = None,
    event_type: str = "task_dispatched",
) -> DispatchDecision:
    """Give the (locked) task to ``username`` as a dispatch (or, with ``event_type``
    task_claimed, a grab from the pool), and store the decision: the decision's row, the
    task's new assignee and its history row are one statement where the database allows it
    (engine.reassign_task_with)."""
    decision = _decision(rec, task, mode, username, decided_by, reason)
    values = {f"d_{column.key}": getattr(decision, column.key) for column in _COLUMNS}
    written = reassign_task_with(
        db_session=db_session,
        task=task,
        event_type=event_type,
        assignee=username,
        reason=reason,
        actor=decided_by,
        along=(_INSERT_DECISION, values),
    )
    decision.id = written.scalar_one()
    # The row is written: the object joins the session as what was loaded, not as new.
    make_transient_to_detached(decision)
    db_session.add(decision)
    return decision


_DECISIONS = DispatchDecision.__table__
_COLUMNS = [column for column in _DECISIONS.columns if not column.primary_key]
_INSERT_DECISION = (
    _DECISIONS.insert()
    .values({column.key: bindparam(f"d_{column.key}", type_=column.type) for column in _COLUMNS})
    .returning(_DECISIONS.c.id)
)


def _decision(
    rec: Recommendation,
    task: HumanTask,
    mode: str,
    chosen: str,
    decided_by: str | None,
    reason: str | None,
) -> DispatchDecision:
    return DispatchDecision(
        # The task's, not rec.ticket.id: the ticket row may have been updated and expired.
        ticket_id=task.ticket_id,
        task_id=task.id,
        mode=mode,
        chosen=chosen,
        decided_by=decided_by,
        reason=reason,
        ranking=rec.stored(),
        created_at=utcnow(),
    )
