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

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import ORG, ROOT
from tests.crawl import (
    chinese_in_english_page,
    crawl,
    english_words_in_chinese_page,
    stored_strings,
    visible_texts,
)

spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
i18n_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(i18n_tool)


def test_every_message_in_the_sources_has_a_chinese_translation():
    assert i18n_tool.missing() == []


def test_the_same_english_reads_the_same_in_chinese_in_every_catalog():
    assert i18n_tool.conflicts() == []


def test_the_compiled_catalogs_match_their_sources():
    for area in ("core", *i18n_tool.AREAS):
        po_path = i18n_tool.catalog_path(area)
        if not po_path.exists():
            continue
        mo_path = po_path.with_suffix(".mo")
        assert mo_path.exists(), f"{mo_path} is missing: run scripts/i18n.py compile"
        with po_path.open("rb") as po, mo_path.open("rb") as mo:
            # Plural messages have a tuple of ids and strings in one, a list in the other.
            source = {str(m.id): str(m.string) for m in read_po(po) if m.id}
            compiled = {
                str(tuple(m.id) if isinstance(m.id, list) else m.id): str(
                    tuple(m.string) if isinstance(m.string, list) else m.string
                )
                for m in read_mo(mo)
                if m.id
            }
        assert compiled == source, f"{mo_path} is stale: run scripts/i18n.py compile"


def test_the_page_reader_finds_words_and_punctuation_of_the_other_language():
    chinese_page = ["语言 Language:", "完成了 Nothing yet.", "现场.png 09:30 · alice"]
    assert english_words_in_chinese_page(chinese_page, {"alice"}) == [
        "'Language' in '语言 Language:'",
        "'Nothing' in '完成了 Nothing yet.'",
        "'yet' in '完成了 Nothing yet.'",
    ]
    english_page = ["Waiting for 网络组、硬件组", "Due：today", "Held by 张伟"]
    assert chinese_in_english_page(english_page, ["网络组", "硬件组", "张伟"]) == [
        "Waiting for 网络组、硬件组",
        "Due：today",
    ]


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
    data = stored_strings()
    chinese = crawl(pages(username, "zh"))
    assert len(chinese) >= 2, f"{username} reached only {list(chinese)}"
    problems = {
        url: bad
        for url, html in chinese.items()
        if (bad := english_words_in_chinese_page(visible_texts(html), usernames, data))
    }
    assert problems == {}, "English words on Chinese pages"

    english = crawl(pages(username, "en"))
    assert set(english) == set(chinese), "both languages reach the same pages"
    problems = {
        url: bad
        for url, html in english.items()
        if (bad := chinese_in_english_page(visible_texts(html), data))
    }
    assert problems == {}, "untranslated Chinese on English pages"
