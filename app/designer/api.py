"""/api/v1/designer: process drafts, validation, diff, deploy, the instance view's counts, the
properties panel's pickers and the DMN "try it" panel. Admins only, every route."""

from __future__ import annotations

import json

from flask import Response, url_for
from flask_login import current_user
from marshmallow import fields

from app.api import PROBLEM_JSON, Blueprint, ProblemSchema, problem, problems
from app.audit.service import record
from app.auth.access import roles_required
from app.designer import service, waiting
from app.designer.checks import problem_answer
from app.designer.schemas import (
    DIFF_EXAMPLE,
    DRAFT_EXAMPLE,
    LOOKUPS_EXAMPLE,
    NEW_PROCESS_EXAMPLE,
    PROBLEM_EXAMPLE,
    PROCESS_LIST_EXAMPLE,
    SMALL_BPMN,
    SMALL_DMN,
    DeployArgs,
    DeployedSchema,
    DiffSchema,
    DraftSchema,
    DraftSourcesArgs,
    LookupArgs,
    LookupsSchema,
    NewProcessArgs,
    ProblemItemSchema,
    ProcessSummarySchema,
    SaveDraftArgs,
    TriedSchema,
    TryDecisionArgs,
    ValidationSchema,
    WaitingSchema,
)
from app.designer.tryit import try_decision
from app.errors import NotFound
from app.extensions import db
from app.workflows.api import record_deploy
from app.workflows.schemas import one_line_text

blp = Blueprint(
    "designer",
    __name__,
    url_prefix="/api/v1/designer",
    description="流程设计器：草稿、校验、对比与部署 / the process designer: drafts, validation, "
    "diff and deploy",
)

KEY = {"in": "path", "name": "key", "example": "it_service"}
VERSION = {"in": "path", "name": "version", "example": 1}
VERSION_PATH = "<int(max=2147483647):version>"
XML = {"type": "string", "description": "BPMN 2.0 XML"}


class DeployRefusedSchema(ProblemSchema):
    problems = fields.List(fields.Nested(ProblemItemSchema))


def _key(key: str) -> str:
    """A key from the address; one that could not be a process key names no process."""
    if not one_line_text(key) or len(key) > 100:
        raise NotFound(f"流程 {key!r} 不存在", f"process {key!r} does not exist")
    return key


def _actor() -> str:
    return current_user.username


def _xml_download(xml: str, filename: str) -> Response:
    response = Response(xml, mimetype="application/xml")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ---------------------------------------------------------------- processes and drafts


@blp.route("/processes", methods=["GET"])
@roles_required("admin")
@blp.response(200, ProcessSummarySchema(many=True), example=PROCESS_LIST_EXAMPLE)
@problems(blp, 401, 403)
def list_processes():
    """Every process key (deployed or drafted) with every version, who deployed it, when, and
    how many instances run on it; and the draft, if one is stored."""
    return service.list_processes(db_session=db.session)


@blp.route("/processes", methods=["POST"])
@roles_required("admin")
@blp.arguments(NewProcessArgs, example=NEW_PROCESS_EXAMPLE)
@blp.response(201, DraftSchema, example=DRAFT_EXAMPLE)
@problems(blp, 400, 401, 403, 409, 422)
def create_process(args):
    """A new process: a draft with start → end (and its diagram), stored at once."""
    draft = service.create_process(
        db_session=db.session, key=args["key"], name=args["name"], actor=_actor()
    )
    record(
        db_session=db.session,
        action="designer.create",
        object_type="process_draft",
        object_id=draft.process_key,
        after={"key": draft.process_key, "name": draft.name},
    )
    db.session.commit()
    return service.draft_answer(db_session=db.session, key=draft.process_key)


@blp.route("/processes/<key>/duplicate", methods=["POST"], parameters=[KEY])
@roles_required("admin")
@blp.arguments(NewProcessArgs, example={"key": "it_service_copy", "name": "IT 服务请求（副本）"})
@blp.response(201, DraftSchema, example=DRAFT_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409, 422)
def duplicate_process(args, key):
    """A new process copied from this one's draft (or latest version), its id renamed."""
    draft = service.duplicate_process(
        db_session=db.session, key=_key(key), new_key=args["key"], name=args["name"], actor=_actor()
    )
    record(
        db_session=db.session,
        action="designer.duplicate",
        object_type="process_draft",
        object_id=draft.process_key,
        after={"key": draft.process_key, "name": draft.name, "from": key},
    )
    db.session.commit()
    return service.draft_answer(db_session=db.session, key=draft.process_key)


@blp.route("/processes/<key>/draft", methods=["GET"], parameters=[KEY])
@roles_required("admin")
@blp.response(200, DraftSchema, example=DRAFT_EXAMPLE)
@problems(blp, 401, 403, 404)
def get_draft(key):
    """The draft: the stored one, else made from the latest version (lock_version 0, not
    stored until saved)."""
    return service.draft_answer(db_session=db.session, key=_key(key))


@blp.route("/processes/<key>/draft", methods=["PUT"], parameters=[KEY])
@roles_required("admin")
@blp.arguments(
    SaveDraftArgs, example={"bpmn_xml": SMALL_BPMN, "dmn": {}, "forms": {}, "lock_version": 0}
)
@blp.response(200, DraftSchema, example=DRAFT_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409, 422)
def save_draft(args, key):
    """Save the draft as drawn. A half-drawn diagram is fine; only well-formed XML (422 naming
    the file and line) and the sizes are checked. A stale `lock_version` gets 409 naming who
    saved since."""
    service.save_draft(db_session=db.session, key=_key(key), actor=_actor(), **args)
    db.session.commit()
    return service.draft_answer(db_session=db.session, key=key)


@blp.route("/processes/<key>/draft", methods=["DELETE"], parameters=[KEY])
@roles_required("admin")
@blp.response(204)
@problems(blp, 401, 403, 404)
def discard_draft(key):
    """Discard the stored draft (the deployed versions stay; nothing stored is fine)."""
    draft = service.discard_draft(db_session=db.session, key=_key(key))
    if draft is not None:
        record(
            db_session=db.session,
            action="designer.discard",
            object_type="process_draft",
            object_id=key,
            before={"key": key, "lock_version": draft.lock_version},
        )
    db.session.commit()


@blp.route("/processes/<key>/draft/bpmn", methods=["GET"], parameters=[KEY])
@roles_required("admin")
@blp.response(200, XML, content_type="application/xml")
@problems(blp, 401, 403, 404)
def download_draft(key):
    """The draft's BPMN file (as an attachment)."""
    sources, _draft, _latest = service.sources_of(db_session=db.session, key=_key(key))
    return _xml_download(sources.bpmn_xml, f"{key}.bpmn")


# ---------------------------------------------------------------- validate, diff, deploy


@blp.route("/processes/<key>/validate", methods=["POST"], parameters=[KEY])
@roles_required("admin")
@blp.arguments(DraftSourcesArgs, required=False, example={"bpmn_xml": SMALL_BPMN})
@blp.response(200, ValidationSchema, example={"ok": False, "problems": [PROBLEM_EXAMPLE]})
@problems(blp, 400, 401, 403, 404)
def validate_draft(args, key):
    """The server's full deploy checks on the draft (or on the files sent, each one left out
    taken from the stored draft), every problem collected, each naming its element."""
    return service.validate_draft(db_session=db.session, key=_key(key), given=args or {})


@blp.route("/processes/<key>/diff", methods=["GET"], parameters=[KEY])
@roles_required("admin")
@blp.response(200, DiffSchema, example=DIFF_EXAMPLE)
@problems(blp, 401, 403, 404)
def diff_draft(key):
    """The draft against the latest deployed version: flow elements added, removed, changed."""
    return service.diff_draft(db_session=db.session, key=_key(key))


@blp.route("/processes/<key>/deploy", methods=["POST"], parameters=[KEY])
@roles_required("admin")
@blp.arguments(DeployArgs, example={"lock_version": 1})
@blp.response(201, DeployedSchema, example={"key": "it_service", "version": 2, "new_version": True})
@blp.alt_response(
    200,
    schema=DeployedSchema,
    description="内容未变 / sources unchanged",
    example={"key": "it_service", "version": 1, "new_version": False},
)
@blp.alt_response(
    422,
    schema=DeployRefusedSchema,
    description="校验未通过，未部署 / validation failed, nothing deployed",
    content_type=PROBLEM_JSON,
)
@problems(blp, 400, 401, 403, 404, 409)
def deploy_draft(args, key):
    """Validate the stored draft and deploy it as a new immutable version (running instances
    stay on theirs). Any error: 422 with every problem, and nothing stored."""
    try:
        definition, created = service.deploy_draft(
            db_session=db.session, key=_key(key), lock_version=args["lock_version"], actor=_actor()
        )
    except service.DeployRefused as refused:
        db.session.rollback()
        response = problem(422, refused.title, refused.zh, refused.en)
        body = response.get_json()
        body["problems"] = [problem_answer(found) for found in refused.problems]
        response.set_data(json.dumps(body, ensure_ascii=False))
        return response
    record_deploy(definition, new_version=created, **{"from": "designer"})
    db.session.commit()
    answer = {"key": definition.key, "version": definition.version, "new_version": created}
    return answer, 201 if created else 200


# ---------------------------------------------------------------- versions


@blp.route(
    f"/processes/<key>/versions/{VERSION_PATH}/bpmn", methods=["GET"], parameters=[KEY, VERSION]
)
@roles_required("admin")
@blp.response(200, XML, content_type="application/xml")
@problems(blp, 401, 403, 404)
def download_version(key, version):
    """A deployed version's BPMN file (as an attachment)."""
    definition = service.version_of(db_session=db.session, key=_key(key), version=version)
    return _xml_download(definition.bpmn_xml, f"{key}-v{version}.bpmn")


@blp.route(
    f"/processes/<key>/versions/{VERSION_PATH}/waiting", methods=["GET"], parameters=[KEY, VERSION]
)
@roles_required("admin")
@blp.response(
    200,
    WaitingSchema,
    example={
        "key": "it_service",
        "version": 1,
        "elements": {"task_handle": 3},
        "links": {"task_handle": "/designer/it_service/versions/1?element=task_handle"},
    },
)
@problems(blp, 401, 403, 404)
def waiting_at_elements(key, version):
    """How many running instances of this version wait at each element now (open user
    tasks, pending timers, message waits), and the page listing them."""
    definition = service.version_of(db_session=db.session, key=_key(key), version=version)
    counts = waiting.waiting_counts(db_session=db.session, definition=definition)
    return {
        "key": key,
        "version": version,
        "elements": counts,
        "links": {
            ident: url_for(
                "designer_pages.instances", process_key=key, version=version, element=ident
            )
            for ident in counts
        },
    }


# ---------------------------------------------------------------- pickers and decisions


@blp.route("/lookups", methods=["GET"])
@roles_required("admin")
@blp.arguments(LookupArgs, location="query")
@blp.response(200, LookupsSchema, example=LOOKUPS_EXAMPLE)
@problems(blp, 400, 401, 403, 404)
def lookups(args):
    """Groups, people, forms (the draft's and the latest version's) and decisions (the
    draft's DMN files) for the properties panel's pickers; `key` names the process."""
    return service.lookups(db_session=db.session, key=args.get("key"))


@blp.route("/decisions/try", methods=["POST"])
@roles_required("admin")
@blp.arguments(
    TryDecisionArgs,
    example={"dmn_xml": SMALL_DMN, "decision_id": "group_by_category", "inputs": {"category": "x"}},
)
@blp.response(
    200,
    TriedSchema,
    example={
        "decision_id": "group_by_category",
        "outputs": [{"assigned_group": "service_desk"}],
        "matched_rules": ["rule_other"],
        "result": {"assigned_group": "service_desk"},
    },
)
@problems(blp, 400, 401, 403, 422)
def try_decision_table(args):
    """Evaluate a decision on typed inputs with the engine's own DMN evaluation (a business
    rule task run by SpiffWorkflow with the safe evaluator): the result a process would get."""
    return try_decision(**args)
