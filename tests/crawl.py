"""Reading pages like a person does: following every link from the start page, and the text
a page shows, in which language."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import lxml.html
from sqlalchemy import String, Text, select

from app.extensions import db

SKIPPED_LINKS = ("/logout", "/lang/", "/static/", "/api/", "/attachments/")
# Words a Chinese page may show as they are: product and format names, the language's own name.
KEPT_IN_ENGLISH = {
    "SLA",
    "PDF",
    "QR",
    "API",
    "OpenAPI",
    "BPMN",
    "English",
    "MB",
    "KB",
    "CSAT",
    "CSV",
    "GBK",
    "Excel",
}
# Han characters, and the Chinese punctuation ("、", "：", "（") that no English page uses.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
EDGE_PUNCTUATION = ".,:;!?()[]\"'“”‘’…"
HIDDEN_TAGS = {"script", "style", "template", "noscript", "svg"}
VISIBLE_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


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
    # What people typed into task forms (the work-order timeline shows it).
    for row in db.session.execute(select(db.metadata.tables["process_event"].c.data)):
        found.update(v for v in (row[0] or {}).values() if isinstance(v, str) and CJK.search(v))
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


def without_data(text: str, data: list[str]) -> str:
    for value in data:
        if value in text:
            text = text.replace(value, " ")
    return text


def english_words_in_chinese_page(
    texts: list[str], usernames: set[str], data: list[str] = ()
) -> list[str]:
    bad = []
    for text in texts:
        for token in without_data(text, data).split():
            # A word before a colon or ending a sentence ("Status:", "yet.") is still a word.
            token = token.strip(EDGE_PUNCTUATION)
            if re.search(r"[\d_./@:#=?&]", token):
                continue  # numbers, ids, file names, addresses, times
            for word in WORD.findall(token):
                if word not in KEPT_IN_ENGLISH and word not in usernames:
                    bad.append(f"{word!r} in {text!r}")
    return bad


def chinese_in_english_page(texts: list[str], data: list[str]) -> list[str]:
    bad = []
    for text in texts:
        if CJK.search(text) and CJK.search(without_data(text, data)):
            bad.append(text)
    return bad
