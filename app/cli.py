"""Shell commands: create-user, seed-demo, deploy-processes, serve (web + timers), worker,
dispatch-simulate."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from app.audit.service import acting_as
from app.errors import PaidanError
from app.extensions import db


def register_cli(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option(
        "--role", required=True, help="admin|dispatcher|handler|reviewer|requester|finance"
    )
    @click.option("--group", "groups", multiple=True, help="group code; repeat for several")
    @click.option("--name", "display_name", default=None, help="display name (显示名)")
    def create_user_command(username, password, role, groups, display_name):
        """Create an account (the first admin of a real installation)."""
        from app.auth.service import create_user

        try:
            with acting_as("cli"):
                create_user(
                    db_session=db.session,
                    username=username,
                    password=password,
                    role=role,
                    display_name=display_name,
                    group_codes=list(groups),
                )
                db.session.commit()
        except PaidanError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        click.echo(f"已创建用户 {username}（{role}） / created user {username} ({role})")

    @app.cli.command("deploy-processes")
    def deploy_processes_command():
        """Deploy the shipped processes/ folder (a new version only where something changed)."""
        from app.demo import deploy_shipped

        with acting_as("cli"):
            definitions = deploy_shipped(app)
            db.session.commit()
        for d in definitions:
            click.echo(f"{d.key} v{d.version} ({d.content_hash[:12]})")

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Deploy the shipped processes and create a small company with work orders."""
        from app.auth.models import Group
        from app.demo import seed_demo

        if db.session.scalar(select(Group.id).limit(1)) is not None:
            click.echo("演示数据已存在，跳过 / demo data already present, skipped")
            return
        with acting_as("cli"):
            summary = seed_demo(app)
            db.session.commit()
        click.echo(f"演示数据已创建 / demo data created: {summary}")

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1")
    @click.option("--port", default=5000, type=int)
    def serve_command(host, port):
        """Run the web server with the embedded timer scheduler (the single-machine default)."""
        from werkzeug.serving import run_simple

        from app.jobs import make_scheduler
        from app.jobs.timer_worker import TimerWorker

        scheduler = make_scheduler(app, blocking=False, timers=False)
        scheduler.start()
        timers = TimerWorker(app)
        timers.start()
        click.echo(f"派单 Paidan: http://{host}:{port}")
        try:
            run_simple(host, port, app, threaded=True, use_reloader=False)
        finally:
            timers.stop()
            scheduler.shutdown(wait=False)

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="fire what is due now and exit")
    def worker_command(once):
        """Fire due timers as they fall due, and run the other background jobs; run as many
        workers as wanted (they share timers via SKIP LOCKED)."""
        import signal

        from app.jobs import fire_timers, make_scheduler
        from app.jobs.timer_worker import TimerWorker

        if once:
            report = fire_timers(app)
            click.echo(f"fired {report.fired}, failed {report.failed}")
            return
        click.echo("派单 worker: firing due timers")
        scheduler = make_scheduler(app, blocking=False, timers=False)
        scheduler.start()
        timers = TimerWorker(app)
        signal.signal(signal.SIGTERM, lambda *_: timers.stop())
        try:
            timers.run()
        finally:
            scheduler.shutdown(wait=False)

    @app.cli.command("dispatch-simulate")
    @click.option("--engineers", default=25, type=click.IntRange(min=3), show_default=True)
    @click.option("--tickets", default=240, type=click.IntRange(min=1), show_default=True)
    @click.option("--hours", default=10.0, type=click.FloatRange(min=0.5), show_default=True)
    @click.option("--seed", default=1, type=int, show_default=True)
    @click.option("--policy", default=None, help="round_robin|nearest|greedy|batch (default: all)")
    def dispatch_simulate_command(engineers, tickets, hours, seed, policy):
        """Replay a synthetic day in a city under each dispatch policy (no database needed)."""
        from app.dispatch.simulate import POLICIES, report

        if policy is not None and policy not in POLICIES:
            raise click.BadParameter(f"choose one of {', '.join(POLICIES)}", param_hint="--policy")
        policies = POLICIES if policy is None else (policy,)
        click.echo(
            report(engineers=engineers, tickets=tickets, hours=hours, seed=seed, policies=policies)
        )
