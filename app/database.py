"""Database engine setup and statements that differ by backend."""

from __future__ import annotations

from functools import lru_cache

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


def write_together(db_session, statements: tuple[UpdateBase, ...], params: dict):
    """Run INSERT/UPDATE/DELETE statements, built once with distinct bound parameter names,
    as one round trip where the database allows it; return the result of the first (its
    RETURNING rows, if it has them).

    On PostgreSQL the others become data-modifying WITH parts of the first: one statement,
    one snapshot, all of them run whether or not the first refers to them; they must not
    write the same row twice (none of them sees another's change). Elsewhere (SQLite has no
    DML in WITH) they run one after another, the others first, so the order of writes is the
    same.
    """
    first, *more = statements
    if more and db_session.get_bind().dialect.name == "postgresql":
        return db_session.execute(_combined(statements), params)
    for statement in more:
        db_session.execute(statement, params)
    return db_session.execute(first, params)


@lru_cache(maxsize=64)
def _combined(statements: tuple[UpdateBase, ...]) -> UpdateBase:
    # Built once per combination (building and keying a statement costs more than running it).
    first, *more = statements
    return first.add_cte(*(statement.cte(f"w{i}") for i, statement in enumerate(more)))
