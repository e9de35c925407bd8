"""Pages never decide access on their own: each role sees on a page exactly what the API lets it
see, every link a page shows opens, and anonymous visitors are sent to sign in.

The API's permission table (tests/test_permissions.py) is the specification; here every work
order and task page is compared with its API twin for every role, and every page a role can
reach is crawled for links that would answer 403 or 404.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest

from app.engine.models import HumanTask
from tests.crawl import crawl

ROLES = {
    "admin": "admin",
    "dispatcher": "desk",
    "handler": "net1",
    "reviewer": "reviewer",
    "requester": "alice",
    "finance": "fin1",
}
# Links a page may show although following them is not a page view.
ACTIONS = ("/logout", "/lang/")


def all_tasks(db_session) -> list[HumanTask]:
    return list(db_session.query(HumanTask).filter(HumanTask.status == "open"))


@pytest.mark.parametrize("role", ROLES)
def test_a_work_order_page_opens_exactly_when_the_api_shows_it(pages, as_user, world, role):
    browser, api = pages(ROLES[role]), as_user(ROLES[role])
    for flow in world.values():
        ticket_id = flow.ticket.id
        page = browser.get(f"/tickets/{ticket_id}").status_code
        assert page == api.get(f"/api/v1/tickets/{ticket_id}").status_code, (role, ticket_id)


@pytest.mark.parametrize("role", ROLES)
def test_a_task_page_opens_exactly_when_the_api_shows_it(pages, as_user, world, db_session, role):
    browser, api = pages(ROLES[role]), as_user(ROLES[role])
    for task in all_tasks(db_session):
        page = browser.get(f"/tasks/{task.id}").status_code
        assert page == api.get(f"/api/v1/tasks/{task.id}").status_code, (role, task.name)


@pytest.mark.parametrize("role", ROLES)
def test_every_link_on_every_page_a_role_reaches_opens(pages, world, role):
    browser = pages(ROLES[role])
    reached = crawl(browser)
    broken = {}
    for url, html in reached.items():
        for href in set(lxml.html.fromstring(html).xpath("//a/@href")):
            target = urljoin(url, href)
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(ACTIONS):
                continue
            status = browser.get(
                parts.path + (f"?{parts.query}" if parts.query else "")
            ).status_code
            if status not in (200, 302):
                broken[f"{url} -> {href}"] = status
    assert broken == {}


def test_anonymous_visitors_are_sent_to_sign_in_and_back(pages, world, app):
    anonymous = pages(None)
    ticket_id = world["it"].ticket.id
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if path.startswith(("/api", "/static", "/login", "/lang")) or path == "/logout":
            continue
        url = (
            path.replace("<int:ticket_id>", str(ticket_id))
            .replace("<int:attachment_id>", "1")
            .replace("<task_id>", world["it"].task("task_handle").id)
            .replace("<device_no>", "DEV-T-2")
            .replace("<process_key>", "it_service")
            .replace("<code>", "en")
            .replace("<int:calendar_id>", "1")
            .replace("<int:policy_id>", "1")
            .replace("<int:day_id>", "1")
            .replace("<int(max=2147483647):version>", "1")
        )
        if "GET" in rule.methods:
            answer = anonymous.get(url)
            assert answer.status_code == 302, url
            assert answer.headers["Location"].startswith("/login?next="), url
        if "POST" in rule.methods:
            assert anonymous.post(url, data={}).status_code in (401, 403), url
