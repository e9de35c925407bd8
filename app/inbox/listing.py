"""The inbox as pages show it: tabs with counts, filters, ordering, paging and the facts each
item needs (work order, who holds it, who may claim it). Visibility is inbox.service's."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.auth.access import ticket_condition
from app.auth.models import Group, User
from app.engine.models import HumanTask, ProcessDefinition, ProcessInstance
from app.errors import InvalidInput
from app.inbox.service import DISPATCHING_ROLES, is_candidate, visible_tasks_query
from app.tickets.models import PRIORITIES, Device, Ticket
from app.timeutil import utcnow

# Roles with an inbox; requesters reach their acceptance task from their portal.
INBOX_ROLES = ("admin", "dispatcher", "handler", "reviewer")
SEARCH_MAX = 100


def tabs_for(user: User) -> tuple[str, ...]:
    """mine and group for everyone with an inbox; all for those who hand out work."""
    return ("mine", "group", "all") if user.role in DISPATCHING_ROLES else ("mine", "group")


@dataclass(frozen=True)
class Filters:
    tab: str = "mine"
    process: str = ""
    priority: str = ""
    q: str = ""
    page: int = 1

    @property
    def narrowed(self) -> bool:
        return bool(self.process or self.priority or self.q)

    def query_args(self, **changes) -> dict:
        """The query string of this view (with ``changes``), empty values left out."""
        values = {
            "tab": self.tab,
            "process": self.process,
            "priority": self.priority,
            "q": self.q,
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


def parse_filters(args, user: User) -> Filters:
    """Filters from a query string. A tab the role does not have falls back to "mine", so a
    link shared by a dispatcher still opens; a malformed value is refused, naming it."""
    tab = args.get("tab", "mine")
    priority = args.get("priority", "").strip()
    if priority and priority not in PRIORITIES:
        raise InvalidInput(
            f"优先级 {priority} 无效（可选：{', '.join(PRIORITIES)}）",
            f"priority {priority} is not valid (choose from {', '.join(PRIORITIES)})",
            errors={"priority": [f"one of {', '.join(PRIORITIES)}"]},
        )
    raw_page = args.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 1_000_000:
        raise InvalidInput(
            f"页码 {raw_page} 无效，请给出 1 到 1000000 之间的整数",
            f"page {raw_page} is not valid; give a whole number from 1 to 1000000",
            errors={"page": ["a whole number from 1 to 1000000"]},
        )
    return Filters(
        tab=tab if tab in tabs_for(user) else "mine",
        process=args.get("process", "").strip()[:100],
        priority=priority,
        q=" ".join(args.get("q", "").split())[:SEARCH_MAX],
        page=int(raw_page),
    )


def tab_counts(db_session: Session, user: User) -> dict[str, int]:
    """Open tasks per tab, without the filters (like a mail folder's count), in one query."""

    def count(scope: str):
        listed = visible_tasks_query(db_session, user, scope=scope).order_by(None).subquery()
        return select(func.count()).select_from(listed).scalar_subquery()

    tabs = tabs_for(user)
    row = db_session.execute(select(*(count(tab).label(tab) for tab in tabs))).one()
    return dict(zip(tabs, row, strict=True))


def process_names(db_session: Session) -> dict[str, str]:
    """Process key -> name of its latest deployed version."""
    rows = db_session.execute(
        select(ProcessDefinition.key, ProcessDefinition.name).order_by(ProcessDefinition.version)
    )
    return {key: name for key, name in rows}


@dataclass
class InboxItem:
    task: HumanTask
    ticket: Ticket | None
    process_name: str
    # A link to the work order only where its page would open for this person.
    ticket_visible: bool
    overdue: bool
    holder: str | None
    offered_to: list[str] = field(default_factory=list)
    claimable: bool = False
    # Where the work is: the work order's address, else its device's (field engineers).
    place: str | None = None


@dataclass
class Listing:
    items: list[InboxItem]
    total: int
    page: int
    pages: int


def inbox_listing(db_session: Session, user: User, filters: Filters, page_size: int) -> Listing:
    """One page of the tab: overdue first, then by due time (none last), then oldest first."""
    query = (
        visible_tasks_query(db_session, user, scope=filters.tab)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .outerjoin(Ticket, Ticket.id == HumanTask.ticket_id)
        .add_columns(Ticket, ProcessInstance.process_key)
    )
    if filters.process:
        query = query.where(ProcessInstance.process_key == filters.process)
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.q:
        query = query.where(
            or_(
                Ticket.number.icontains(filters.q, autoescape=True),
                Ticket.title.icontains(filters.q, autoescape=True),
            )
        )
    total = db_session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // page_size))
    page = min(filters.page, pages)
    # Due times ascend, so the overdue (due before now) come first; then the undated.
    ordered = query.order_by(None).order_by(
        HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at, HumanTask.id
    )
    rows = db_session.execute(ordered.limit(page_size).offset((page - 1) * page_size)).all()
    items = describe(db_session, user, rows)
    return Listing(items=items, total=total, page=page, pages=pages)


def describe(
    db_session: Session,
    user: User,
    rows: list[tuple[HumanTask, Ticket | None, str]],
) -> list[InboxItem]:
    """Inbox items for (task, ticket, process key) rows, with names looked up once per page."""
    now = utcnow()
    usernames = {t.assignee for t, _, _ in rows if t.assignee}
    people = display_names(
        db_session, usernames | {u for t, _, _ in rows for u in t.candidate_users}
    )
    group_names = group_labels(db_session, {g for t, _, _ in rows for g in t.candidate_groups})
    visible = visible_ticket_ids(db_session, user, {k.id for _, k, _ in rows if k is not None})
    names = process_names(db_session)
    places = _device_addresses(db_session, {k.device_no for _, k, _ in rows if k is not None})
    return [
        InboxItem(
            task=task,
            ticket=ticket,
            process_name=names.get(key, key),
            ticket_visible=ticket is not None and ticket.id in visible,
            overdue=task.due_at is not None and task.due_at < now,
            holder=people.get(task.assignee, task.assignee) if task.assignee else None,
            offered_to=[group_names.get(g, g) for g in task.candidate_groups]
            + [people.get(u, u) for u in task.candidate_users],
            claimable=task.status == "open" and not task.assignee and is_candidate(user, task),
            place=(ticket.location_address or places.get(ticket.device_no)) if ticket else None,
        )
        for task, ticket, key in rows
    ]


def _device_addresses(db_session: Session, device_nos: set[str | None]) -> dict[str, str]:
    wanted = sorted(no for no in device_nos if no)
    if not wanted:
        return {}
    rows = db_session.execute(
        select(Device.device_no, Device.address).where(Device.device_no.in_(wanted))
    )
    return {no: address for no, address in rows if address}


def visible_ticket_ids(db_session: Session, user: User, ticket_ids: set[int]) -> set[int]:
    """Which of these work orders ``user`` may open (app.auth.access's rule)."""
    if not ticket_ids:
        return set()
    return set(
        db_session.scalars(
            select(Ticket.id).where(Ticket.id.in_(ticket_ids), ticket_condition(db_session, user))
        )
    )


def display_names(db_session: Session, usernames: set[str]) -> dict[str, str]:
    """Username -> display name."""
    if not usernames:
        return {}
    rows = db_session.execute(
        select(User.username, User.display_name).where(User.username.in_(usernames))
    )
    return dict(rows.all())


def group_labels(db_session: Session, values: set[str]) -> dict[str, str]:
    """Candidate group values (codes, or names where a lane names one) -> group names."""
    if not values:
        return {}
    labels = {}
    for code, name in db_session.execute(
        select(Group.code, Group.name).where(or_(Group.code.in_(values), Group.name.in_(values)))
    ):
        labels[code] = labels[name] = name
    return labels
