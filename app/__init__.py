"""Paidan (派单): the application factory."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from app.config import load_config
from app.database import configure_sqlite
from app.extensions import api, db, login_manager, migrate


def create_app(config: dict | None = None) -> Flask:
    """Build the app: defaults, then PAIDAN_* environment, then ``config`` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path, config))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # SpiffWorkflow logs every task state change at INFO. Its two loggers get the level set
    # on themselves too: they look at their own level (not the effective one) to decide
    # whether to walk every task of the workflow for the record's extras, which they build
    # even when the record is dropped (about 3 % of a timer firing).
    for name in ("spiff", "spiff.workflow", "spiff.task"):
        logging.getLogger(name).setLevel(logging.WARNING)

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"))
    login_manager.init_app(app)
    api.init_app(app)

    from app import models  # noqa: F401 - every table registered before migrations look
    from app.api import install_error_handlers
    from app.assets import init_assets
    from app.attachments.views import bp as attachment_pages_bp
    from app.audit.api import audit_blp
    from app.auth.api import auth_blp, tokens_blp
    from app.auth.csrf import init_csrf
    from app.auth.helpers import register_auth_helpers
    from app.auth.org_api import departments_blp, groups_blp, skills_blp, users_blp
    from app.auth.views import bp as auth_pages_bp
    from app.cli import register_cli
    from app.designer.api import blp as designer_blp
    from app.designer.views import bp as designer_pages_bp
    from app.dispatch.api import blp as dispatch_blp
    from app.dispatch.roster import watch as watch_roster
    from app.dispatch.views import bp as dispatch_pages_bp
    from app.i18n import init_i18n
    from app.inbox.api import blp as tasks_blp
    from app.inbox.views import bp as inbox_pages_bp
    from app.notify.api import blp as notifications_blp
    from app.notify.views import bp as notify_pages_bp
    from app.portal.views import bp as portal_bp
    from app.rules.helpers import register_builtin_helpers
    from app.site.views import bp as site_bp
    from app.sla import receivers as sla_receivers  # noqa: F401 - connects the SLA hooks
    from app.sla.api import blp as sla_blp
    from app.sla.views import bp as sla_pages_bp
    from app.tickets.api import blp as tickets_blp
    from app.tickets.views import bp as ticket_pages_bp
    from app.views import bp as pages_bp
    from app.views import init_pages
    from app.workflows.api import definitions_blp, instances_blp, messages_blp

    register_builtin_helpers()
    register_auth_helpers()
    watch_roster()
    for blueprint in (
        auth_blp,
        tokens_blp,
        users_blp,
        groups_blp,
        departments_blp,
        skills_blp,
        tickets_blp,
        tasks_blp,
        definitions_blp,
        instances_blp,
        messages_blp,
        audit_blp,
        dispatch_blp,
        notifications_blp,
        sla_blp,
        designer_blp,
    ):
        api.register_blueprint(blueprint)
    init_i18n(app)
    init_assets(app)
    init_pages(app)
    app.register_blueprint(pages_bp)
    app.register_blueprint(auth_pages_bp)
    for page_blueprint in (portal_bp, inbox_pages_bp, ticket_pages_bp, site_bp, dispatch_pages_bp):
        app.register_blueprint(page_blueprint)
    app.register_blueprint(attachment_pages_bp)
    app.register_blueprint(notify_pages_bp)
    app.register_blueprint(sla_pages_bp)
    app.register_blueprint(designer_pages_bp)
    init_csrf(app)
    install_error_handlers(app)
    register_cli(app)
    return app
