"""Database engine setup and statements that differ by backend."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import UpdateBase


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


def write_together(db_session, first: UpdateBase, *more: UpdateBase):
    """Run INSERT/UPDATE/DELETE statements as one round trip where the database allows it,
    and return the result of ``first`` (its RETURNING rows, if it has them).

    On PostgreSQL ``more`` become data-modifying WITH parts of ``first``: one statement, one
    snapshot, all of them run whether or not ``first`` refers to them; they must not write
    the same row twice (none of them sees another's change). Elsewhere (SQLite has no DML in
    WITH) they run one after another, ``more`` first, so the order of writes is the same.
    """
    if more and db_session.get_bind().dialect.name == "postgresql":
        return db_session.execute(
            first.add_cte(*(statement.cte(f"w{i}") for i, statement in enumerate(more)))
        )
    for statement in more:
        db_session.execute(statement)
    return db_session.execute(first)
