"""Fixtures: a fresh database per run (SQLite, or PostgreSQL when PAIDAN_TEST_DATABASE_URL
names a server), migrated with Alembic; each test runs inside a transaction rolled back after it.

Tests that need real commits across threads or processes use ``fresh_app``: a database of
their own, created and dropped around the test. The migrations and the seeding run once per
run, into a template database; the run's database and each ``fresh_app`` one are copies of it.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import g
from flask_migrate import upgrade
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.extensions import db

pytest_plugins = ["tests.browser"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "test-password-1"
ROOT = Path(__file__).resolve().parent.parent

# username, role, groups, lead of
ORG = [
    ("admin", "admin", [], None),
    ("desk", "dispatcher", ["service_desk"], "service_desk"),
    ("reviewer", "reviewer", ["service_desk"], None),
    ("net_lead", "handler", ["network"], "network"),
    ("net1", "handler", ["network"], None),
    ("hw_lead", "handler", ["hardware"], "hardware"),
    ("hw1", "handler", ["hardware"], None),
    ("fac_lead", "handler", ["facilities"], "facilities"),
    ("fac1", "handler", ["facilities"], None),
    ("parts", "handler", ["spare_parts"], "spare_parts"),
    ("alice", "requester", [], None),
    ("bob", "requester", [], None),
    ("fin1", "finance", [], None),
]
GROUPS = [
    ("service_desk", "服务台"),
    ("network", "网络组"),
    ("hardware", "硬件组"),
    ("facilities", "设施组"),
    ("spare_parts", "备件库"),
]


def pytest_configure(config):
    # Stopped by SIGTERM, the run ends as after Ctrl-C: the fixtures are torn down, so a
    # PostgreSQL pass drops its databases instead of leaving them on the server. make test
    # stops its PostgreSQL pass so on Ctrl-C (a shell's background job ignores SIGINT).
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(_signum, _frame):
    # Once: a second SIGTERM (a process group's, then make's own) must not cut the teardown.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def backend() -> str:
    url = os.environ.get("PAIDAN_TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@pytest.fixture(scope="session")
def new_database(tmp_path_factory):
    """A factory of databases on the backend under test, empty or copies of ``template`` (a URL
    that nothing is connected to); all are dropped at the end."""
    server = os.environ.get("PAIDAN_TEST_DATABASE_URL", "")
    created: list[str] = []

    def make(template: str | None = None) -> str:
        if not server.startswith("postgresql"):
            path = tmp_path_factory.mktemp("db") / "paidan.sqlite3"
            if template:
                source = sqlite3.connect(sa.engine.make_url(template).database)
                target = sqlite3.connect(path)
                source.backup(target)
                target.close()
                source.close()
            return f"sqlite:///{path}"
        name = f"paidan_test_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{sa.engine.make_url(template).database}"' if template else ""
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
        admin.dispose()
        created.append(name)
        return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)

    yield make

    if created:
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def attachment_dir(url: str) -> Path:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / "attachments"
    import tempfile

    return Path(tempfile.mkdtemp(prefix="paidan-attachments-"))


def configured_app(url: str):
    """An app on ``url`` as the tests configure it; the database is left as it is."""
    return create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SECRET_KEY": "test",
            # argon2id at its cheapest: hashing is not what these tests measure
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 64,
            # Files of each app's work orders go beside its database, never into instance/.
            "ATTACHMENT_DIR": str(attachment_dir(url)),
        }
    )


def build_app(url: str):
    """An app on ``url``, migrated, with the shipped processes and the test organisation."""
    app = configured_app(url)
    with app.app_context():
        upgrade()
        seed_org()
        from app.demo import deploy_shipped

        deploy_shipped(app)
        app.extensions["test_tokens"] = issue_tokens()
        db.session.commit()
        db.session.remove()
    return app


def issue_tokens() -> dict[str, str]:
    """A bearer token for every user of the test organisation, valid for the whole run."""
    from app.auth.models import User
    from app.auth.tokens import issue_personal_token

    tokens = {}
    for user in db.session.scalars(sa.select(User)):
        row, token = issue_personal_token(db_session=db.session, user=user)
        row.expires_at = None
        tokens[user.username] = token
    return tokens


def seed_org() -> None:
    from app.auth.org_service import create_group
    from app.auth.service import create_user

    groups = {
        code: create_group(db_session=db.session, code=code, name=name) for code, name in GROUPS
    }
    for username, role, group_codes, lead_of in ORG:
        user = create_user(
            db_session=db.session,
            username=username,
            password=PASSWORD,
            role=role,
            group_codes=group_codes,
        )
        if lead_of:
            groups[lead_of].lead_id = user.id
    from app.tickets.models import Device

    db.session.add_all(
        [
            Device(
                device_no="DEV-T-1", name="测试交换机", region="beijing", address="北京测试机房"
            ),
            Device(device_no="DEV-T-2", name="测试空调", region="shanghai", address="上海测试楼顶"),
        ]
    )


@pytest.fixture(scope="session")
def built_database(new_database) -> tuple[str, dict[str, str]]:
    """The URL of a database that ``build_app`` prepared, and the bearer tokens it issued.

    Nothing stays connected to it: ``copied_app`` copies it.
    """
    url = new_database()
    app = build_app(url)
    with app.app_context():
        db.engine.dispose()
    return url, app.extensions["test_tokens"]


def copied_app(new_database, built_database):
    """What ``build_app`` gives, on a copy of the built database (its users, tokens, processes)."""
    template, tokens = built_database
    app = configured_app(new_database(template=template))
    app.extensions["test_tokens"] = tokens
    return app


@pytest.fixture(scope="session")
def app(new_database, built_database):
    app = copied_app(new_database, built_database)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def fresh_app(new_database, built_database):
    """An app on a database of its own, for tests that commit from several threads or processes."""
    app = copied_app(new_database, built_database)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def session_on(connection) -> Iterator:
    """db.session bound to ``connection``, inside its transaction: commits inside the code under
    test release SAVEPOINTs, so requests behave as in production and leave nothing behind."""
    original = db.session
    db.session = scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    )
    try:
        yield db.session
    finally:
        db.session.remove()
        db.session = original


@pytest.fixture
def db_session(app) -> Iterator:
    """db.session bound to one connection whose outer transaction is rolled back after the test."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        try:
            with session_on(connection) as session:
                yield session
        finally:
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app, db_session):
    return app.test_client()


def auth_header(app, username: str) -> dict:
    return {"Authorization": f"Bearer {app.extensions['test_tokens'][username]}"}


class Api:
    """A test client that signs every request in as one user."""

    def __init__(self, client, username: str):
        self.client = client
        self.headers = auth_header(client.application, username)
        self.username = username

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def patch(self, url, **kw):
        return self.request("PATCH", url, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)

    def request(self, method, url, **kw):
        # The test holds an app context open, which requests share; drop the user that
        # flask-login cached in g by the previous request, as a new request would.
        g.pop("_login_user", None)
        return self.client.open(url, method=method, headers=self.headers, **kw)


@pytest.fixture
def as_user(client):
    return lambda username: Api(client, username)


class Pages:
    """A browser-like client with a signed-in session: asks for HTML, sends the CSRF token."""

    HTML: ClassVar[dict] = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

    def __init__(self, client, username: str | None, language: str = "zh"):
        self.client = client
        self.username = username
        client.set_cookie("paidan_lang", language)
        login = self.get("/login").get_data(as_text=True)
        self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        if username:
            answer = self.post("/login", data={"username": username, "password": PASSWORD})
            assert answer.status_code == 302, f"{username} could not sign in"
            self.csrf = re.search(
                r'name="csrf-token" content="([^"]+)"', self.get("/login").get_data(as_text=True)
            ).group(1)

    def get(self, url, **kw):
        return self.open(url, "GET", **kw)

    def post(self, url, data=None, **kw):
        if isinstance(data, dict):
            data = {"csrf_token": self.csrf, **data}
        return self.open(url, "POST", data=data, **kw)

    def htmx(self, url, method="GET", **kw):
        return self.open(url, method, headers={"HX-Request": "true"}, **kw)

    def fetch(self, url, method="POST", **kw):
        """What the page scripts send: JSON answers wanted, CSRF in the header."""
        return self.open(url, method, headers={"Accept": "application/json"}, **kw)

    def open(self, url, method, headers=None, **kw):
        g.pop("_login_user", None)  # as a new request would (the test's app context persists)
        sent = {**self.HTML, "X-CSRF-Token": getattr(self, "csrf", ""), **(headers or {})}
        return self.client.open(url, method=method, headers=sent, **kw)


@pytest.fixture
def pages(app, db_session):
    """pages("net1") -> a signed-in browser-like client (its own cookies); pages(None): anonymous."""
    return lambda username, language="zh": Pages(app.test_client(), username, language)


@pytest.fixture
def world(db_session):
    """Work orders in several states, so that pages have something to show."""
    from app.auth.org_service import create_skill
    from tests.flows import Flow

    # The skills the shipped decision table asks for: dispatch names them in its reasons.
    for code, name in (("network", "网络"), ("pc", "电脑终端"), ("air_conditioning", "空调")):
        create_skill(db_session=db_session, code=code, name=name)
    it = Flow(db_session, "alice", "it_service", title="打印机无法联网", region="beijing")
    it.do(
        "task_triage",
        "desk",
        resolution="forward",
        triage_note="已电话确认",
        category="network",
        priority="P2",
        region="beijing",
    )
    repair = Flow(
        db_session,
        "bob",
        "equipment_repair",
        title="空调外机异响",
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    repair.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容 × 1")
    done = Flow(
        db_session,
        "alice",
        "equipment_repair",
        title="机房空调漏水",
        category="facilities",
        priority="P3",
        region="shanghai",
        device_no="DEV-T-2",
    )
    done.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    done.do("task_onsite", "fac1", fault_cause="排水管堵塞", work_done="疏通排水管")
    done.do("task_acceptance", "alice", acceptance_result="accept", acceptance_comment="好了")
    return {"it": it, "repair": repair, "done": done}
