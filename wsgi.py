"""The gunicorn entry point: the app, and no scheduler (workers run `flask --app wsgi worker`)."""

from app import create_app
from app.gctune import tune_gc

app = create_app()
tune_gc()
