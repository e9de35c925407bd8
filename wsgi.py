"""The entry point of every Paidan process: gunicorn, `flask --app wsgi serve` and `worker`.

The app, and no scheduler (workers run `flask --app wsgi worker`); the garbage collector tuned
once start-up is done (app.gctune)."""

from app import create_app
from app.gctune import tune_gc

app = create_app()
tune_gc()
