"""/api/v1/process-definitions and /api/v1/process-instances."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from sqlalchemy import func, select

from app import engine
from app.api import Blueprint
from app.auth.access import roles_required
from app.engine.models import ProcessDefinition
from app.errors import InvalidInput
from app.extensions import db
from app.workflows.schemas import (
    DefinitionSchema,
    DeployFilesSchema,
    InstanceSchema,
    StartInstanceSchema,
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


@definitions_blp.route("", methods=["POST"])
@definitions_blp.arguments(DeployFilesSchema, location="files")
@definitions_blp.response(201, DefinitionSchema(many=True))
@roles_required("admin")
def deploy_definitions(_files):
    """Deploy .bpmn/.dmn/.form files (multipart field `files`) as new versions."""
    uploads = request.files.getlist("files")
    if not uploads:
        raise InvalidInput(
            "请在 multipart 字段 files 中上传 .bpmn/.dmn/.form 文件",
            "upload .bpmn/.dmn/.form files in the multipart field `files`",
        )
    files = [(upload.filename or "", upload.read()) for upload in uploads]
    definitions = engine.deploy(db_session=db.session, files=files, actor=current_user.username)
    db.session.commit()
    return definitions


@definitions_blp.route("", methods=["GET"])
@definitions_blp.response(200, DefinitionSchema(many=True))
@roles_required("admin", "dispatcher")
def list_definitions():
    """The latest version of every deployed process."""
    latest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    return db.session.scalars(
        select(ProcessDefinition)
        .join(
            latest,
            (latest.c.key == ProcessDefinition.key)
            & (latest.c.version == ProcessDefinition.version),
        )
        .order_by(ProcessDefinition.key)
    ).all()


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
@instances_blp.arguments(StartInstanceSchema)
@instances_blp.response(201, InstanceSchema)
@roles_required("admin", "dispatcher")
def start_instance(args):
    """Start the latest version of a deployed process with `data`."""
    instance = engine.start(
        db_session=db.session,
        process_key=args["process_key"],
        data=args["data"],
        business_key=args["business_key"],
        actor=current_user.username,
    )
    db.session.commit()
    return instance_view(instance, with_data=True)


@instances_blp.route("/<int:instance_id>", methods=["GET"])
@instances_blp.response(200, InstanceSchema)
@roles_required("admin", "dispatcher")
def get_instance(instance_id: int):
    """Status, what the instance waits on, and its history."""
    instance = engine.get_instance(db_session=db.session, instance_id=instance_id)
    return instance_view(instance, with_data=True)
