"""The gunicorn entry point: the app, and no scheduler (workers run `flask --app wsgi worker`)."""

from app import create_app

app = create_app()
