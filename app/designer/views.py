"""Designer pages (admins only): the process list, the editor page that hosts the browser
island, and the instance view of one deployed version with the work waiting at each step.

The pages shape what app.designer.service returns; the editor itself is the Vite entry
`designer` (designer/src/pages/designer.js), the instance diagram `designer_instances`.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.access import roles_required
from app.designer import service, waiting
from app.errors import NotFound, PaidanError, ProcessError
from app.extensions import db
from app.i18n import current_language, error_text

bp = Blueprint("designer_pages", __name__, url_prefix="/designer")

API = "/api/v1/designer"


def designer_label() -> str:
    """The designer's name in the main navigation (admins only)."""
    return _("Process designer")


def _process_list(error: str | None = None, typed: dict | None = None, status: int = 200):
    return (
        render_template(
            "designer/list.html",
            processes=service.list_processes(db_session=db.session),
            error=error,
            typed=typed or {},
        ),
        status,
    )


@bp.get("")
@roles_required("admin")
def process_list():
    """Every process with its versions (who deployed each, when, what runs on it) and draft."""
    return _process_list()


@bp.post("")
@roles_required("admin")
def create_process():
    typed = {"key": request.form.get("key", "").strip(), "name": request.form.get("name", "")}
    try:
        name = _name(typed["name"])
        service.create_process(
            db_session=db.session, key=typed["key"], name=name, actor=current_user.username
        )
    except PaidanError as error:
        db.session.rollback()
        return _process_list(error_text(error), {"new": typed}, error.status)
    db.session.commit()
    return redirect(url_for("designer_pages.editor", process_key=typed["key"]), 303)


@bp.post("/<process_key>/duplicate")
@roles_required("admin")
def duplicate_process(process_key: str):
    typed = {"key": request.form.get("key", "").strip(), "name": request.form.get("name", "")}
    try:
        service.duplicate_process(
            db_session=db.session,
            key=process_key,
            new_key=typed["key"],
            name=_name(typed["name"]),
            actor=current_user.username,
        )
    except PaidanError as error:
        db.session.rollback()
        return _process_list(error_text(error), {process_key: typed}, error.status)
    db.session.commit()
    return redirect(url_for("designer_pages.editor", process_key=typed["key"]), 303)


def _name(text: str) -> str:
    name = " ".join(text.split())
    if not name or len(name) > 200:
        raise ProcessError(
            "名称必须填写，最多 200 个字符", "a name is required, at most 200 characters"
        )
    return name


@bp.get("/<process_key>")
@roles_required("admin")
def editor(process_key: str):
    """The editor: BPMN, DMN and forms tabs, drawn by the browser island."""
    _sources, draft, latest = service.sources_of(db_session=db.session, key=process_key)
    return render_template(
        "designer/editor.html",
        islands=["designer"],
        key=process_key,
        name=draft.name if draft else latest.name,
        latest=latest,
        api=API,
        language=current_language(),
    )


@bp.get("/<process_key>/versions/<int(max=2147483647):version>")
@roles_required("admin")
def instances(process_key: str, version: int):
    """A deployed version's diagram with the number of instances waiting at each element, and
    the instances waiting at one element (``?element=``) with links to their work orders."""
    definition = service.version_of(db_session=db.session, key=process_key, version=version)
    counts = waiting.waiting_counts(db_session=db.session, definition=definition)
    element = request.args.get("element")
    if element is not None and element not in (definition.elements or {}):
        raise NotFound(
            f"流程 {process_key} 第 {version} 版没有元素 {element}",
            f"process {process_key} version {version} has no element {element}",
        )
    rows = (
        waiting.waiting_instances(db_session=db.session, definition=definition, element_id=element)
        if element
        else []
    )
    return render_template(
        "designer/instances.html",
        islands=["designer_instances"],
        definition=definition,
        counts=counts,
        element=element,
        waiting=rows,
        api=API,
        language=current_language(),
    )
