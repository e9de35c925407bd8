"""Translations of the pages: extract, compile and check the Chinese catalogs.

Message ids are English. Each area keeps its own catalog beside its code, so that work on one
area never rewrites another's file:
    app/translations/zh/LC_MESSAGES/messages.po           everything not listed below
    app/<area>/translations/zh/LC_MESSAGES/messages.po    app/<area>/** and app/templates/<area>/**

    python scripts/i18n.py extract [--area NAME]   add new ids, drop unused ones (keeps msgstr)
    python scripts/i18n.py compile                 .po -> .mo (make run / make test do this)
    python scripts/i18n.py check                   ids without Chinese, or with two different ones
    python scripts/i18n.py fill --area NAME F.json  set translations from {"English": "中文"}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
sys.path.insert(0, str(ROOT))

from app.config import TRANSLATION_AREAS  # noqa: E402

AREAS = TRANSLATION_AREAS
LOCALE = "zh"
METHODS = [
    ("**/static/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}


def area_of(path: str) -> str:
    parts = Path(path).parts
    if parts[0] == "templates" and len(parts) > 2 and parts[1] in AREAS:
        return parts[1]
    if parts[0] in AREAS:
        return parts[0]
    return "core"


def catalog_path(area: str) -> Path:
    base = APP / "translations" if area == "core" else APP / area / "translations"
    return base / LOCALE / "LC_MESSAGES" / "messages.po"


def translation_directories() -> list[str]:
    """Every folder flask-babel reads (BABEL_TRANSLATION_DIRECTORIES)."""
    return [str(catalog_path(area).parents[2]) for area in ("core", *AREAS)]


def extracted() -> dict[str, dict]:
    """area -> {msgid: [locations]} of every message in the sources."""
    found: dict[str, dict] = defaultdict(dict)
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(APP), METHODS, keywords=KEYWORDS, options_map={"**.html": {"trimmed": "true"}}
    ):
        found[area_of(filename)].setdefault(message, []).append((f"app/{filename}", lineno))
    return found


def load(path: Path) -> Catalog:
    if path.exists():
        with path.open("rb") as handle:
            return read_po(handle, locale=LOCALE)
    return Catalog(locale=LOCALE, project="paidan")


def extract(only: str | None) -> None:
    for area, messages in sorted(extracted().items()):
        if only and area != only:
            continue
        path = catalog_path(area)
        old = load(path)
        new = Catalog(locale=LOCALE, project="paidan", fuzzy=False)
        for msgid, locations in sorted(messages.items(), key=lambda item: str(item[0])):
            previous = old.get(msgid)
            new.add(msgid, previous.string if previous else "", locations=locations)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, new, width=100, omit_header=False, sort_output=True)
        print(f"{path.relative_to(ROOT)}: {len(messages)} messages")


def fill(area: str, translations: dict[str, str]) -> None:
    path = catalog_path(area)
    catalog = load(path)
    unknown = [msgid for msgid in translations if catalog.get(msgid) is None]
    if unknown:
        raise SystemExit(f"not in {path.relative_to(ROOT)} (run extract first): {unknown}")
    for msgid, text in translations.items():
        catalog.get(msgid).string = text
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, sort_output=True)


def compile_all() -> None:
    for area in ("core", *AREAS):
        path = catalog_path(area)
        if path.exists():
            with path.open("rb") as handle, path.with_suffix(".mo").open("wb") as out:
                write_mo(out, read_po(handle, locale=LOCALE))


def missing() -> list[str]:
    """Every message id in the sources without a Chinese translation, with where it is."""
    problems = []
    for area, messages in sorted(extracted().items()):
        catalog = load(catalog_path(area))
        for msgid, locations in messages.items():
            entry = catalog.get(msgid)
            strings = entry.string if entry else None
            texts = strings if isinstance(strings, tuple | list) else (strings,)
            if entry is None or entry.fuzzy or not all(texts):
                where = ", ".join(f"{f}:{n}" for f, n in locations[:2])
                problems.append(
                    f"{msgid!r} ({where}) has no Chinese in {catalog_path(area).relative_to(ROOT)}"
                )
    return problems


def conflicts() -> list[str]:
    """Ids translated differently in two catalogs: flask-babel merges them and one would win
    silently, so the same English must read the same in Chinese everywhere."""
    seen: dict[str, tuple[str, str]] = {}
    problems = []
    for area in ("core", *AREAS):
        path = catalog_path(area)
        if not path.exists():
            continue
        for message in load(path):
            if not message.id or not message.string:
                continue
            first = seen.setdefault(str(message.id), (area, str(message.string)))
            if first[1] != str(message.string):
                problems.append(
                    f"{message.id!r}: {first[0]} says {first[1]!r}, {area} says {message.string!r}"
                )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["extract", "compile", "check", "fill"])
    parser.add_argument("--area", choices=["core", *AREAS])
    parser.add_argument("file", nargs="?", help="fill: a JSON object of English -> Chinese")
    args = parser.parse_intermixed_args()
    if args.command == "extract":
        extract(args.area)
    elif args.command == "fill":
        fill(args.area or "core", json.loads(Path(args.file).read_text("utf-8")))
    elif args.command == "compile":
        compile_all()
    else:
        problems = missing() + conflicts()
        print("\n".join(problems) or "every message has one Chinese translation")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
