"""/api/v1/process-definitions, /api/v1/process-instances and /api/v1/messages."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user
from sqlalchemy import func, select

from app import engine
from app.api import Blueprint, PageArgs, paginate, problems
from app.audit.service import record
from app.auth.access import roles_required, ticket_condition
from app.engine import definition_versions, get_definition
from app.engine.models import ProcessDefinition
from app.errors import InvalidInput, NotFound, TooLarge
from app.extensions import db
from app.integrations.idempotency import idempotent
from app.tickets.models import Ticket
from app.workflows.schemas import (
    DEFINITION_EXAMPLE,
    INSTANCE_EXAMPLE,
    WAITING_EXAMPLE,
    DefinitionPageSchema,
    DefinitionSchema,
    DefinitionSourcesSchema,
    DeliveredSchema,
    DeployFilesSchema,
    InstanceSchema,
    MessageSchema,
    StartInstanceSchema,
    one_line_text,
)

definitions_blp = Blueprint(
    "process_definitions",
    __name__,
    url_prefix="/api/v1/process-definitions",
    description="部署与查看流程定义 / deploy and list process definitions",
)
messages_blp = Blueprint(
    "messages",
    __name__,
    url_prefix="/api/v1/messages",
    description="向等待中的流程投递消息 / deliver a message to the instance waiting for it",
)
instances_blp = Blueprint(
    "process_instances",
    __name__,
    url_prefix="/api/v1/process-instances",
    description="启动与查看流程实例 / start and inspect process instances",
)

# Path parameters with examples; flask-smorest merges them with the ones it derives. Integers
# are bounded by the column types, so a huge id is an unknown address (404), not an overflow.
VERSION_PATH = "<int(max=2147483647):version>"
INSTANCE_PATH = "<int(max=9223372036854775807):instance_id>"
KEY = {"in": "path", "name": "key", "example": "it_service"}
VERSION = {"in": "path", "name": "version", "example": 2}
INSTANCE_ID = [{"in": "path", "name": "instance_id", "example": 17}]

# ---------------------------------------------------------------- definitions


def _process_key(key: str) -> str:
    """A key from the address; one with control characters names no process (and PostgreSQL
    would refuse to compare it)."""
    if not one_line_text(key):
        raise NotFound(f"流程 {key!r} 尚未部署", f"process {key!r} is not deployed")
    return key


def record_deploy(definition: ProcessDefinition, *, new_version: bool, **how) -> None:
    """The audit record of a deploy (the upload API's and the designer's): the version, and
    ``how`` it came (files uploaded, or from the designer)."""
    record(
        db_session=db.session,
        action="definition.deploy",
        object_type="process_definition",
        object_id=definition.id,
        after={
            "key": definition.key,
            "version": definition.version,
            "content_hash": definition.content_hash,
            **how,
            "new_version": new_version,
        },
    )


@definitions_blp.route("", methods=["POST"])
@definitions_blp.arguments(
    DeployFilesSchema,
    location="files",
    example={"files": ["it_service.bpmn", "assignment.dmn", "it_triage.form"]},
)
@definitions_blp.response(201, DefinitionSchema(many=True), example=[DEFINITION_EXAMPLE])
@problems(definitions_blp, 400, 401, 403)
@roles_required("admin")
def deploy_definitions(_files):
    """Deploy .bpmn/.dmn/.form files (multipart field `files`) as new versions.

    A process whose files are unchanged keeps its latest version (answered, not duplicated).
    """
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if (request.content_length or 0) > limit:
        raise TooLarge(
            f"部署文件合计不能超过 {limit // 1024 // 1024} MB",
            f"the deployed files may not exceed {limit // 1024 // 1024} MB in all",
        )
    uploads = request.files.getlist("files")
    if not uploads:
        raise InvalidInput(
            "请在 multipart 字段 files 中上传 .bpmn/.dmn/.form 文件",
            "upload .bpmn/.dmn/.form files in the multipart field `files`",
        )
    files = [(upload.filename or "", upload.read()) for upload in uploads]
    newest_before = db.session.scalar(select(func.max(ProcessDefinition.id))) or 0
    definitions = engine.deploy(db_session=db.session, files=files, actor=current_user.username)
    for definition in definitions:
        record_deploy(
            definition,
            new_version=definition.id > newest_before,
            files=[name for name, _ in files],
        )
    db.session.commit()
    return definitions


@definitions_blp.route("", methods=["GET"])
@definitions_blp.arguments(PageArgs, location="query")
@definitions_blp.response(
    200,
    DefinitionPageSchema,
    example={"items": [DEFINITION_EXAMPLE], "total": 1, "page": 1, "per_page": 20},
)
@problems(definitions_blp, 400, 401, 403)
@roles_required("admin", "dispatcher")
def list_definitions(args):
    """The latest version of every deployed process, by key."""
    latest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    query = (
        select(ProcessDefinition)
        .join(
            latest,
            (latest.c.key == ProcessDefinition.key)
            & (latest.c.version == ProcessDefinition.version),
        )
        .order_by(ProcessDefinition.key)
    )
    return paginate(db.session, query, args["page"], args["per_page"])


@definitions_blp.route("/<key>/versions", methods=["GET"], parameters=[KEY])
@definitions_blp.arguments(PageArgs, location="query")
@definitions_blp.response(
    200,
    DefinitionPageSchema,
    example={
        "items": [DEFINITION_EXAMPLE, {**DEFINITION_EXAMPLE, "id": 1, "version": 1}],
        "total": 2,
        "page": 1,
        "per_page": 20,
    },
)
@problems(definitions_blp, 400, 401, 403, 404)
@roles_required("admin", "dispatcher")
def list_versions(args, key: str):
    """Every deployed version of process `key`, newest first."""
    query = definition_versions(key=_process_key(key))
    page = paginate(db.session, query, args["page"], args["per_page"])
    if not page["total"]:
        raise NotFound(f"流程 {key} 尚未部署", f"process {key} is not deployed")
    return page


@definitions_blp.route(
    f"/<key>/versions/{VERSION_PATH}", methods=["GET"], parameters=[KEY, VERSION]
)
@definitions_blp.response(200, DefinitionSchema, example=DEFINITION_EXAMPLE)
@problems(definitions_blp, 401, 403, 404)
@roles_required("admin", "dispatcher")
def get_version(key: str, version: int):
    """One version of process `key`: when and by whom it was deployed, its DMN files and forms."""
    return get_definition(db_session=db.session, key=_process_key(key), version=version)


@definitions_blp.route(
    f"/<key>/versions/{VERSION_PATH}/sources",
    methods=["GET"],
    parameters=[KEY, VERSION],
)
@definitions_blp.response(
    200,
    DefinitionSourcesSchema,
    example={
        "key": "it_service",
        "version": 2,
        "content_hash": DEFINITION_EXAMPLE["content_hash"],
        "bpmn_filename": "it_service.bpmn",
        "bpmn_xml": '<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions …',
        "dmn": {"assignment.dmn": '<?xml version="1.0" encoding="UTF-8"?><definitions …'},
        "forms": {"it_triage": {"id": "it_triage", "type": "default", "components": []}},
    },
)
@problems(definitions_blp, 401, 403, 404)
@roles_required("admin")
def get_sources(key: str, version: int):
    """The files of one version as deployed: BPMN XML, DMN files and form-js forms."""
    return get_definition(db_session=db.session, key=_process_key(key), version=version)


# ---------------------------------------------------------------- instances


def instance_view(instance, *, with_data: bool) -> dict:
    view = {
        "id": instance.id,
        "process_key": instance.process_key,
        "definition": instance.definition,
        "business_key": instance.business_key,
        "ticket_id": instance.ticket_id,
        "status": instance.status,
        "version": instance.version,
        "started_at": instance.started_at,
        "ended_at": instance.ended_at,
        "active_elements": engine.active_elements(db_session=db.session, instance=instance),
        "open_tasks": engine.open_tasks(db_session=db.session, instance_id=instance.id),
        "history": engine.history(db_session=db.session, instance_id=instance.id),
    }
    if with_data:
        view["data"] = engine.instance_data(db_session=db.session, instance=instance)
    return view


@instances_blp.route("", methods=["POST"])
@idempotent(instances_blp)
@instances_blp.arguments(
    StartInstanceSchema,
    example={
        "process_key": "it_service",
        "business_key": "EXT-1",
        "data": {"title": "外部系统报障", "priority": "P3", "region": "beijing"},
    },
)
@instances_blp.response(201, InstanceSchema, example=INSTANCE_EXAMPLE)
@problems(instances_blp, 400, 401, 403, 404, 409, 422)
@roles_required("admin", "dispatcher")
def start_instance(args):
    """Start the latest version of a deployed process with `data` (the REST trigger)."""
    instance = engine.start(
        db_session=db.session,
        process_key=args["process_key"],
        data=args["data"],
        business_key=args["business_key"],
        actor=current_user.username,
    )
    record(
        db_session=db.session,
        action="instance.start",
        object_type="process_instance",
        object_id=instance.id,
        after={
            "process_key": instance.process_key,
            "definition_version": instance.definition.version,
            "business_key": instance.business_key,
            "data": args["data"],
        },
    )
    # @idempotent commits the work together with the answer it keeps for the key.
    return instance_view(instance, with_data=True)


@instances_blp.route(f"/{INSTANCE_PATH}", methods=["GET"], parameters=INSTANCE_ID)
@instances_blp.response(200, InstanceSchema, example=INSTANCE_EXAMPLE)
@problems(instances_blp, 401, 403, 404)
@roles_required("admin", "dispatcher")
def get_instance(instance_id: int):
    """Status, what the instance waits on, and its history.

    The instance of a work order the caller may not see is not found, like the work order.
    """
    instance = engine.get_instance(db_session=db.session, instance_id=instance_id)
    if instance.ticket_id is not None and not current_user.is_admin:
        visible = db.session.scalar(
            select(Ticket.id).where(
                Ticket.id == instance.ticket_id, ticket_condition(db.session, current_user)
            )
        )
        if visible is None:
            raise NotFound(
                f"流程实例 {instance_id} 不存在", f"process instance {instance_id} not found"
            )
    return instance_view(instance, with_data=True)


# ---------------------------------------------------------------- messages


@messages_blp.route("", methods=["POST"])
@idempotent(messages_blp)
@messages_blp.arguments(
    MessageSchema,
    example={
        "name": "payment_received",
        "correlation_key": "IT-20261126-00042",
        "payload": {"amount": 120, "paid_at": "2026-11-26T10:00:00+08:00"},
    },
)
@messages_blp.response(
    200,
    DeliveredSchema,
    example={
        "instance_id": 17,
        "process_key": "wait_for_payment",
        "business_key": "IT-20261126-00042",
        "ticket_id": None,
        "status": "running",
        "waiting_on": [WAITING_EXAMPLE],
    },
)
@problems(messages_blp, 400, 401, 403, 404, 409, 422)
@roles_required("admin", "dispatcher")
def deliver_message(args):
    """Deliver message `name` to the one instance waiting for it whose business key (a work
    order's number) is `correlation_key`; the payload lands in its data.

    404 when no instance waits for it under that key, 409 when several do.
    """
    instance = engine.deliver_message(
        db_session=db.session,
        name=args["name"],
        correlation_key=args["correlation_key"],
        payload=args["payload"],
        actor=current_user.username,
    )
    waiting_on = engine.active_elements(db_session=db.session, instance=instance)
    record(
        db_session=db.session,
        action="message.deliver",
        object_type="process_instance",
        object_id=instance.id,
        before={"waiting_for": args["name"], "correlation_key": args["correlation_key"]},
        after={
            "payload": args["payload"],
            "status": instance.status,
            "waiting_on": [element["element_id"] for element in waiting_on],
        },
    )
    # @idempotent commits the work together with the answer it keeps for the key.
    return {
        "instance_id": instance.id,
        "process_key": instance.process_key,
        "business_key": instance.business_key,
        "ticket_id": instance.ticket_id,
        "status": instance.status,
        "waiting_on": waiting_on,
    }
