"""Database engine setup that differs by backend."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave like a database with row locks for our write pattern.

    pysqlite opens transactions lazily and breaks SAVEPOINTs; instead every transaction starts
    with BEGIN IMMEDIATE, which takes the write lock at once. Two steps on one instance then
    run one after the other (the second sees the first's result and gets a 409), as on
    PostgreSQL with FOR UPDATE. WAL keeps readers of other connections unblocked.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
