"""Every page in both languages: no message without its Chinese, and no page showing a word of
the other language that is not data.

The static check reads the sources (scripts/i18n.py): every _() id has a Chinese translation,
and the compiled catalogs match their .po files. The rendered check signs in as every role,
follows every link from the start page, and reads each page's visible text: a Chinese page may
hold English words only when they are data (usernames, numbers, file names) or in a short list
of names kept in English (SLA, PDF, QR); an English page may hold Chinese only inside data
stored in the database (titles, names, addresses, step names).
"""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import String, Text, select

from app.extensions import db
from tests.conftest import ORG, ROOT
from tests.flows import Flow

spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
i18n_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(i18n_tool)

# Words a Chinese page may show as they are: product and format names, the language's own name.
KEPT_IN_ENGLISH = {"SLA", "PDF", "QR", "API", "OpenAPI", "BPMN", "English", "MB", "KB", "CSAT"}
SKIPPED_LINKS = ("/logout", "/lang/", "/static/", "/api/", "/attachments/")
CJK = re.compile(r"[\u3400-\u9fff]")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
HIDDEN_TAGS = {"script", "style", "template", "noscript", "svg"}
VISIBLE_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


def test_every_message_in_the_sources_has_a_chinese_translation():
    assert i18n_tool.missing() == []


def test_the_compiled_catalogs_match_their_sources():
    for area in ("core", *i18n_tool.AREAS):
        po_path = i18n_tool.catalog_path(area)
        if not po_path.exists():
            continue
        mo_path = po_path.with_suffix(".mo")
        assert mo_path.exists(), f"{mo_path} is missing: run scripts/i18n.py compile"
        with po_path.open("rb") as po, mo_path.open("rb") as mo:
            source = {m.id: m.string for m in read_po(po) if m.id}
            compiled = {m.id: m.string for m in read_mo(mo) if m.id}
        assert compiled == source, f"{mo_path} is stale: run scripts/i18n.py compile"


# ---------------------------------------------------------------- rendered pages


def _skipped(element) -> bool:
    # Not shown, or marked as another language on purpose (the language switch: lang="en").
    return element.tag in HIDDEN_TAGS or (element.tag != "html" and element.get("lang"))


def visible_texts(html: str) -> list[str]:
    root = lxml.html.fromstring(html)
    texts = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        hidden = _skipped(element) or any(_skipped(a) for a in element.iterancestors())
        if not hidden:
            texts.append(element.text or "")
            texts.extend(element.get(name) or "" for name in VISIBLE_ATTRIBUTES)
            if element.tag == "input" and element.get("type") in {"submit", "button"}:
                texts.append(element.get("value") or "")
        parent_hidden = any(_skipped(a) for a in element.iterancestors())
        if not parent_hidden:
            texts.append(element.tail or "")
    return [" ".join(text.split()) for text in texts if text and text.strip()]


def stored_strings() -> list[str]:
    """Every string stored in the database: what pages show as data."""
    found: set[str] = set()
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text)]
        if not columns or table.name in {"process_instance", "process_definition"}:
            continue
        for row in db.session.execute(select(*columns)):
            found.update(value for value in row if isinstance(value, str) and CJK.search(value))
    for row in db.session.execute(select(db.metadata.tables["ticket"].c.custom_fields)):
        found.update(str(v) for v in (row[0] or {}).values())
    from app.tickets.models import REGIONS

    found.update(REGIONS.values())
    # Labels of deployed forms and element names are data an admin wrote.
    from app.engine.models import ProcessDefinition

    for definition in db.session.scalars(select(ProcessDefinition)):
        found.add(definition.name)
        for element in (definition.elements or {}).values():
            if isinstance(element, dict) and element.get("name"):
                found.add(element["name"])
    return sorted(found, key=len, reverse=True)


def english_words_in_chinese_page(texts: list[str], usernames: set[str]) -> list[str]:
    bad = []
    for text in texts:
        for token in text.split():
            if re.search(r"[\d_./@:#=?&]", token):
                continue  # numbers, ids, file names, addresses, times
            for word in WORD.findall(token):
                if word not in KEPT_IN_ENGLISH and word not in usernames:
                    bad.append(f"{word!r} in {text!r}")
    return bad


def chinese_in_english_page(texts: list[str], data: list[str]) -> list[str]:
    bad = []
    for text in texts:
        if not CJK.search(text):
            continue
        rest = text
        for value in data:
            if value in rest:
                rest = rest.replace(value, " ")
        if CJK.search(rest):
            bad.append(text)
    return bad


def crawl(client, limit: int = 80) -> dict[str, str]:
    """GET every same-site link reachable from the start page: url -> HTML."""
    seen: dict[str, str] = {}
    queue = ["/"]
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        answer = client.get(url, follow_redirects=True)
        if answer.status_code != 200 or "text/html" not in answer.content_type:
            seen[url] = ""
            continue
        html = answer.get_data(as_text=True)
        seen[url] = html
        for href in lxml.html.fromstring(html).xpath("//a/@href"):
            target = urljoin(url, href)
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/"):
                continue
            if parts.path.startswith(SKIPPED_LINKS) or parts.path.endswith(".pdf"):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path not in seen and path not in queue:
                queue.append(path)
    return {url: html for url, html in seen.items() if html}


@pytest.fixture
def world(db_session):
    """Work orders in several states, so that pages have something to show."""
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


@pytest.mark.parametrize(
    "username",
    [
        name
        for name, *_ in ORG
        if name in {"admin", "desk", "reviewer", "net1", "fac1", "parts", "alice", "bob", "fin1"}
    ],
)
def test_every_page_a_role_reaches_is_in_one_language(pages, world, username):
    usernames = {name for name, *_ in ORG}
    chinese = crawl(pages(username, "zh"))
    assert len(chinese) >= 2, f"{username} reached only {list(chinese)}"
    problems = {
        url: bad
        for url, html in chinese.items()
        if (bad := english_words_in_chinese_page(visible_texts(html), usernames))
    }
    assert problems == {}, "English words on Chinese pages"

    data = stored_strings()
    english = crawl(pages(username, "en"))
    assert set(english) == set(chinese), "both languages reach the same pages"
    problems = {
        url: bad
        for url, html in english.items()
        if (bad := chinese_in_english_page(visible_texts(html), data))
    }
    assert problems == {}, "untranslated Chinese on English pages"
