"""Process drafts: listing processes, creating, duplicating, saving and discarding drafts,
validating, comparing and deploying them, and what the designer's pickers and instance view
read. Functions take the session and never commit.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import engine
from app.auth.models import Group, User
from app.designer import checks
from app.designer.checks import Sources
from app.designer.diff import diff
from app.designer.models import ProcessDraft
from app.designer.tryit import decision_ids
from app.engine import parser as bpmn
from app.engine.models import ProcessDefinition, ProcessInstance
from app.errors import Conflict, NotFound, ProcessError
from app.timeutil import utcnow

# A process key is the BPMN process id: an XML NCName (ASCII here: it is also used in
# addresses, file names and expressions).
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"
_KEY = re.compile(KEY_PATTERN)

# A new process: start → end with its diagram; {key} and {name} (an XML attribute) filled in.
NEW_DIAGRAM = (Path(__file__).parent / "new_process.bpmn").read_text("utf-8")


class DeployRefused(ProcessError):
    """Validation found errors: nothing is deployed; the problems go with the answer."""

    def __init__(self, key: str, problems: list[bpmn.Problem]):
        errors = [problem for problem in problems if problem.severity == "error"]
        super().__init__(
            f"流程 {key} 没有部署：校验发现 {len(errors)} 个错误。第一个：{errors[0].zh}",
            f"process {key} was not deployed: validation found {len(errors)} error(s). "
            f"The first: {errors[0].en}",
        )
        self.problems = problems


# ---------------------------------------------------------------- reading


def _stored_draft(db_session: Session, key: str, *, lock: bool = False) -> ProcessDraft | None:
    query = select(ProcessDraft).where(ProcessDraft.process_key == key)
    return db_session.scalar(query.with_for_update() if lock else query)


def _latest(db_session: Session, key: str) -> ProcessDefinition | None:
    return engine.latest_definition(db_session=db_session, key=key, required=False)


def _unknown(key: str) -> NotFound:
    return NotFound(
        f"流程 {key} 既没有部署过，也没有草稿", f"process {key} has neither a version nor a draft"
    )


def sources_of(
    *, db_session: Session, key: str
) -> tuple[Sources, ProcessDraft | None, ProcessDefinition | None]:
    """The draft's sources: the stored draft, else the latest version's (404 with neither)."""
    draft = _stored_draft(db_session, key)
    latest = _latest(db_session, key)
    if draft is None and latest is None:
        raise _unknown(key)
    filename = latest.bpmn_filename if latest else f"{key}.bpmn"
    if draft is not None:
        sources = Sources(key, filename, draft.bpmn_xml, dict(draft.dmn), dict(draft.forms))
    else:
        sources = Sources(
            key, filename, latest.bpmn_xml, dict(latest.dmn_sources), dict(latest.forms)
        )
    return sources, draft, latest


def draft_answer(*, db_session: Session, key: str) -> dict:
    """The draft as the editor opens it; made from the latest version when none is stored
    (lock_version 0: the first save creates it)."""
    sources, draft, latest = sources_of(db_session=db_session, key=key)
    return {
        "key": key,
        "name": draft.name if draft else latest.name,
        "bpmn_xml": sources.bpmn_xml,
        "dmn": sources.dmn,
        "forms": sources.forms,
        "base_version": draft.base_version if draft else latest.version,
        "lock_version": draft.lock_version if draft else 0,
        "updated_by": draft.updated_by if draft else None,
        "updated_at": draft.updated_at if draft else None,
    }


def list_processes(*, db_session: Session) -> list[dict]:
    """Every process key, deployed or drafted, with every version and what runs on it."""
    running = dict(
        db_session.execute(
            select(ProcessInstance.definition_id, func.count())
            .where(ProcessInstance.status == "running")
            .group_by(ProcessInstance.definition_id)
        ).all()
    )
    rows = db_session.execute(
        select(
            ProcessDefinition.id,
            ProcessDefinition.key,
            ProcessDefinition.version,
            ProcessDefinition.name,
            ProcessDefinition.deployed_by,
            ProcessDefinition.deployed_at,
        ).order_by(ProcessDefinition.key, ProcessDefinition.version)
    ).all()
    processes: dict[str, dict] = {}
    for row in rows:
        entry = processes.setdefault(row.key, {"key": row.key, "versions": [], "draft": None})
        entry["name"] = row.name
        entry["versions"].append(
            {
                "version": row.version,
                "deployed_by": row.deployed_by,
                "deployed_at": row.deployed_at,
                "running": running.get(row.id, 0),
            }
        )
    for draft in db_session.scalars(select(ProcessDraft)):
        entry = processes.setdefault(
            draft.process_key, {"key": draft.process_key, "name": draft.name, "versions": []}
        )
        entry["draft"] = {
            "name": draft.name,
            "updated_by": draft.updated_by,
            "updated_at": draft.updated_at,
            "lock_version": draft.lock_version,
        }
    for entry in processes.values():
        entry["versions"].reverse()  # newest first
    return [processes[key] for key in sorted(processes)]


# ---------------------------------------------------------------- creating and saving


def check_key(key: str) -> None:
    if not _KEY.match(key or ""):
        raise ProcessError(
            f"流程标识 {key!r} 无效：须以字母或下划线开头，只含字母、数字、_ . -，最多 100 个字符"
            "（XML NCName）",
            f"the process key {key!r} is invalid: it must start with a letter or underscore "
            "and hold only letters, digits, _ . - (an XML NCName), at most 100 characters",
        )


def _check_new_key(db_session: Session, key: str) -> None:
    check_key(key)
    if _latest(db_session, key) is not None or _stored_draft(db_session, key) is not None:
        raise Conflict(f"流程 {key} 已经存在", f"process {key} already exists")


def create_process(*, db_session: Session, key: str, name: str, actor: str) -> ProcessDraft:
    """A new process: a draft holding start → end, ready to draw on."""
    _check_new_key(db_session, key)
    return _first_draft(
        db_session, key, name, NEW_DIAGRAM.format(key=key, name=quoteattr(name)), {}, {}, actor
    )


def duplicate_process(
    *, db_session: Session, key: str, new_key: str, name: str, actor: str
) -> ProcessDraft:
    """A new process from ``key``'s draft (or latest version): its process id renamed."""
    sources, _draft, _latest_version = sources_of(db_session=db_session, key=key)
    _check_new_key(db_session, new_key)
    root = _parsed(sources.bpmn_filename, sources.bpmn_xml)
    process = next((p for p in root.iterfind("bpmn:process", bpmn.NS) if p.get("id") == key), None)
    if process is None:
        raise ProcessError(
            f"无法复制：流程图中没有 id 为 {key} 的流程",
            f"cannot duplicate: the diagram has no process with the id {key}",
        )
    for node in root.iter():
        for attribute in ("processRef", "bpmnElement"):
            if node.get(attribute) == key:
                node.set(attribute, new_key)
    process.set("id", new_key)
    process.set("name", name)
    xml = etree.tostring(root, encoding="UTF-8", xml_declaration=True).decode("utf-8")
    return _first_draft(db_session, new_key, name, xml, sources.dmn, sources.forms, actor)


def _first_draft(
    db_session: Session, key: str, name: str, bpmn_xml: str, dmn: dict, forms: dict, actor: str
) -> ProcessDraft:
    """The first draft of a process not deployed yet (no base version)."""
    draft = ProcessDraft(
        process_key=key,
        name=name,
        bpmn_xml=bpmn_xml,
        dmn=dmn,
        forms=forms,
        base_version=None,
        updated_by=actor,
        updated_at=utcnow(),
        lock_version=1,
    )
    db_session.add(draft)
    db_session.flush()
    return draft


def _parsed(filename: str, xml: str) -> etree._Element:
    root, problem = bpmn.read_xml(filename, xml.encode("utf-8"))
    if problem is not None:
        raise ProcessError(problem.zh, problem.en)
    return root


def _process_name(root: etree._Element, key: str) -> str | None:
    for process in root.iterfind("bpmn:process", bpmn.NS):
        if process.get("id") == key and (process.get("name") or "").strip():
            return process.get("name").strip()[:200]
    return None


def _stale(draft: ProcessDraft | None, lock_version: int, key: str) -> Conflict:
    if draft is None:
        return Conflict(
            f"流程 {key} 的草稿已被丢弃，请重新打开后再保存",
            f"the draft of process {key} was discarded; reopen it and save again",
        )
    when = draft.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Conflict(
        f"流程 {key} 的草稿已被 {draft.updated_by} 于 {when} 保存（第 {draft.lock_version} 次），"
        f"你打开的是第 {lock_version} 次保存的版本；请重新打开后再改",
        f"the draft of process {key} was saved by {draft.updated_by} at {when} (save "
        f"{draft.lock_version}) after the one you opened (save {lock_version}); reopen it first",
    )


def save_draft(
    *,
    db_session: Session,
    key: str,
    bpmn_xml: str,
    dmn: dict,
    forms: dict,
    lock_version: int,
    actor: str,
) -> ProcessDraft:
    """Store the draft as drawn, half-drawn included: only well-formed XML is required."""
    draft = _stored_draft(db_session, key, lock=True)
    latest = _latest(db_session, key)
    if draft is None and latest is None:
        raise _unknown(key)
    if (draft.lock_version if draft else 0) != lock_version:
        raise _stale(draft, lock_version, key)
    filename = latest.bpmn_filename if latest else f"{key}.bpmn"
    root = _parsed(filename, bpmn_xml)
    for name, text in dmn.items():
        _parsed(name, text)
    if draft is None:
        draft = ProcessDraft(process_key=key, base_version=latest.version, lock_version=0)
        db_session.add(draft)
    draft.name = _process_name(root, key) or draft.name or (latest.name if latest else key)
    draft.bpmn_xml = bpmn_xml
    draft.dmn = dict(dmn)
    draft.forms = dict(forms)
    draft.updated_by = actor
    draft.updated_at = utcnow()
    draft.lock_version += 1
    db_session.flush()
    return draft


def discard_draft(*, db_session: Session, key: str) -> ProcessDraft | None:
    """Drop the stored draft (nothing to drop is fine); the deployed versions stay."""
    draft = _stored_draft(db_session, key, lock=True)
    if draft is None and _latest(db_session, key) is None:
        raise _unknown(key)
    if draft is not None:
        db_session.delete(draft)
        db_session.flush()
    return draft


# ---------------------------------------------------------------- validate, diff, deploy


def validate_draft(*, db_session: Session, key: str, given: dict | None = None) -> dict:
    """The full deploy checks on the draft; fields in ``given`` replace the stored ones."""
    sources, _draft, _latest_version = sources_of(db_session=db_session, key=key)
    for name in ("bpmn_xml", "dmn", "forms"):
        if given and given.get(name) is not None:
            setattr(sources, name, given[name])
    problems = checks.validate(sources)
    return {
        "ok": not any(problem.severity == "error" for problem in problems),
        "problems": [checks.problem_answer(problem) for problem in problems],
    }


def diff_draft(*, db_session: Session, key: str) -> dict:
    """The draft against the latest deployed version, element by element."""
    sources, _draft, latest = sources_of(db_session=db_session, key=key)
    base = _parsed(latest.bpmn_filename, latest.bpmn_xml) if latest else None
    draft_root, _problem = bpmn.read_xml(sources.bpmn_filename, sources.bpmn_xml.encode("utf-8"))
    return {"base_version": latest.version if latest else None, **diff(base, draft_root, key)}


def deploy_draft(
    *, db_session: Session, key: str, lock_version: int, actor: str
) -> tuple[ProcessDefinition, bool]:
    """Validate the stored draft and deploy it as a new immutable version.

    Returns the version and whether it is new (unchanged sources keep the latest version).
    """
    draft = _stored_draft(db_session, key, lock=True)
    latest = _latest(db_session, key)
    if draft is None:
        if latest is None:
            raise _unknown(key)
        raise Conflict(
            f"流程 {key} 没有保存的草稿，没有可部署的内容",
            f"process {key} has no saved draft: there is nothing to deploy",
        )
    if draft.lock_version != lock_version:
        raise _stale(draft, lock_version, key)
    sources, _draft, _latest_version = sources_of(db_session=db_session, key=key)
    problems = checks.validate(sources)
    if any(problem.severity == "error" for problem in problems):
        raise DeployRefused(key, problems)
    newest_before = latest.version if latest else 0
    deployed = engine.deploy(db_session=db_session, files=sources.files(), actor=actor)
    definition = next(d for d in deployed if d.key == key)
    draft.base_version = definition.version
    db_session.flush()
    return definition, definition.version > newest_before


# ---------------------------------------------------------------- instance view and pickers


def version_of(*, db_session: Session, key: str, version: int) -> ProcessDefinition:
    return engine.get_definition(db_session=db_session, key=key, version=version)


def lookups(*, db_session: Session, key: str | None) -> dict:
    """What the properties panel offers: groups, people, forms and decisions."""
    groups = db_session.execute(select(Group.code, Group.name).order_by(Group.code)).all()
    users = db_session.execute(
        select(User.username, User.display_name)
        .where(User.kind == "person", User.is_active_account.is_(True))
        .order_by(User.username)
    ).all()
    forms: dict[str, dict] = {}
    decisions: dict[str, str] = {}
    titles: dict[str, str] = {}
    if key is not None:
        sources, _draft, latest = sources_of(db_session=db_session, key=key)
        for form_id, schema in {**(latest.forms if latest else {}), **sources.forms}.items():
            forms[form_id] = schema
        for name, text in sources.dmn.items():
            root, _problem = bpmn.read_xml(name, text.encode("utf-8"))
            if root is not None:
                decisions.update(decision_ids(root))
        titles = _form_titles(sources)
    return {
        "groups": [{"code": code, "name": name} for code, name in groups],
        "users": [{"username": u, "display_name": d} for u, d in users],
        "forms": [
            {"id": form_id, "title": schema.get("title") or titles.get(form_id, "")}
            for form_id, schema in sorted(forms.items())
        ],
        "decisions": [{"id": ident, "name": name} for ident, name in sorted(decisions.items())],
    }


def _form_titles(sources: Sources) -> dict[str, str]:
    """A form's title: the names of the steps of the diagram that show it."""
    root, _problem = bpmn.read_xml(sources.bpmn_filename, sources.bpmn_xml.encode("utf-8"))
    titles: dict[str, list[str]] = {}
    for node in root.iter() if root is not None else ():
        form_key = node.get(f"{{{bpmn.CAMUNDA_NS}}}formKey")
        if form_key and node.get("name"):
            titles.setdefault(form_key, []).append(node.get("name"))
    return {form_id: "、".join(names) for form_id, names in titles.items()}
