"""Engine tables: definition versions, instances and their projections (tasks, timers, events)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

# BigInteger primary keys stay autoincrementing on SQLite only as INTEGER.
BigId = BigInteger().with_variant(Integer, "sqlite")
# A task's due time in this year is held (see HumanTask.paused).
HELD_YEAR = 9999


def is_held(due_at) -> bool:
    """Whether a due time is held: set to the year HELD_YEAR by the domain that owns it (an SLA
    clock on hold, app.sla.clock.NEVER)."""
    return isinstance(due_at, datetime) and due_at.year >= HELD_YEAR


class ProcessDefinition(db.Model):
    """One immutable deployed version of one executable BPMN process, with all its sources."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    bpmn_filename: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    # {filename: xml} of the DMN files deployed with it, {form id: form-js schema}.
    dmn_sources: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)
    forms: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)
    # The parsed specs as SpiffWorkflow serializes them; stored once per version.
    # The large columns are deferred: a step needs them only when its version is not cached.
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    # {element id: {"type", "name", "lane"?}} to label history without loading the spec.
    elements: Mapped[dict] = mapped_column(JSON, default=dict, deferred=True)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deployed_by: Mapped[str | None] = mapped_column(String(100))


class ProcessInstance(db.Model):
    __tablename__ = "process_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    business_key: Mapped[str | None] = mapped_column(String(100), index=True)
    # Set when the instance runs a work order; the engine does not know what a ticket is.
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    state: Mapped[str] = mapped_column(Text)
    state_format: Mapped[str] = mapped_column(String(40))
    # Incremented by every saved step; a stale writer fails (SQLite has no row locks).
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)

    definition: Mapped[ProcessDefinition] = relationship(lazy="joined")

    __mapper_args__: ClassVar[dict] = {"version_id_col": version}


class HumanTask(db.Model):
    """Projection of the user tasks an instance waits on; the inbox reads only this table."""

    __tablename__ = "human_task"
    __table_args__ = (Index("ix_human_task_status_assignee", "status", "assignee"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    element_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    form_key: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|completed|cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Indexed: dispatch sums each engineer's work finished today.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    completed_by: Mapped[str | None] = mapped_column(String(100))

    candidates: Mapped[list[HumanTaskCandidate]] = relationship(
        cascade="all, delete-orphan", order_by="HumanTaskCandidate.value"
    )

    @property
    def candidate_groups(self) -> list[str]:
        return [c.value for c in self.candidates if c.kind == "group"]

    @property
    def candidate_users(self) -> list[str]:
        return [c.value for c in self.candidates if c.kind == "user"]

    @property
    def paused(self) -> bool:
        """Whether the due time is held: set to the year 9999 by the domain that owns it (an
        SLA clock on hold, app.sla.clock.NEVER). The API shows it beside ``due_at``."""
        return is_held(self.due_at)


class HumanTaskCandidate(db.Model):
    """One candidate group or user of an open task, so inbox queries are plain joins."""

    __tablename__ = "human_task_candidate"

    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # group|user
    value: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Timer(db.Model):
    """A timer an instance waits on; the worker claims due rows and fires them."""

    __tablename__ = "timer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class MessageSubscription(db.Model):
    """A message an instance waits for; delivery picks the instance by name and key."""

    __tablename__ = "message_subscription"

    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    message_name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    element_id: Mapped[str] = mapped_column(String(100))


class ProcessEvent(db.Model):
    """Append-only log of what happened in an instance: audit and process mining read it."""

    __tablename__ = "process_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    element_id: Mapped[str | None] = mapped_column(String(100))
    element_type: Mapped[str | None] = mapped_column(String(60))
    element_name: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    data: Mapped[dict | None] = mapped_column(JSON)
