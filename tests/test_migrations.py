"""The Alembic migrations create exactly what the models describe, on SQLite and PostgreSQL."""


def test_the_migrations_match_the_models(fresh_app):
    """`flask db check`: autogenerate finds nothing the migrations do not already create."""
    result = fresh_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
