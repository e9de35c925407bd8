"""Forms on pages: the form-js schema as the page language shows it.

Admins write labels in both languages ("解决方案 / Solution"); a page shows the side of its
language. The schema the server validates is unchanged: only display texts are picked.
"""

from __future__ import annotations

import copy
import re

from flask_babel import gettext as _

from app.i18n import current_language, pick

DISPLAY_KEYS = ("label", "description", "placeholder")


def localized_schema(schema: dict | None, language: str | None = None) -> dict | None:
    """A copy of ``schema`` whose labels, descriptions and option labels are in one language.

    Every keyed component also gets ``id == key``: form-js reports errors by component id and
    the server names fields by key, so the page can show the server's errors on the field.
    """
    if schema is None:
        return None
    localized = copy.deepcopy(schema)
    for component in _walk(localized.get("components", [])):
        if component.get("type") == "text" and isinstance(component.get("text"), str):
            component["text"] = "\n".join(
                _pick_line(line, language) for line in component["text"].split("\n")
            )
        for key in DISPLAY_KEYS:
            if isinstance(component.get(key), str):
                component[key] = pick(component[key], language)
        for option in component.get("values") or []:
            if isinstance(option.get("label"), str):
                option["label"] = pick(option["label"], language)
        if component.get("key"):
            component["id"] = component["key"]
    return localized


# One line of a text component: "分级说明 / Triage note: {{triage_note}}", possibly wrapped in
# markdown ("**…**", "#### …"); the value after the colon belongs to both languages.
_TEXT_LINE = re.compile(
    r"^(?P<lead>[#>*_\s]*)(?P<zh>[^/]*?[\u3400-\u9fff][^/]*?)\s+/\s+(?P<en>[^/:：]+?)"
    r"(?P<value>\s*[:：]\s*\{\{[^}]+\}\}.*?)?(?P<trail>[*_\s]*)$"
)


def _pick_line(line: str, language: str | None) -> str:
    match = _TEXT_LINE.match(line)
    if not match:
        return line
    side = match["zh"] if (language or current_language()) == "zh" else match["en"]
    return f"{match['lead']}{side.strip()}{match['value'] or ''}{match['trail']}"


def _walk(components: list[dict]):
    for component in components:
        yield component
        yield from _walk(component.get("components") or [])


def form_widget_texts() -> dict[str, str]:
    """The few words form-js writes itself (in English), in the page language."""
    return {
        "Select": _("Select"),
        "Search": _("Search"),
        "No results": _("No results"),
        "All values selected": _("All values selected"),
        "Skip to search": _("Skip to search"),
        "Remove tag": _("Remove tag"),
        "Field is required.": _("Field is required."),
        "Check the fields marked in red.": _("Check the fields marked in red."),
        "The server gave no usable answer; try again.": _(
            "The server gave no usable answer; try again."
        ),
        "The server could not be reached; check the connection and try again.": _(
            "The server could not be reached; check the connection and try again."
        ),
        "Field must be a valid email.": _("Field must be a valid email."),
        # {n} stands for the number form-js puts in.
        "Field must have minimum length of {n}.": _("Field must have minimum length of {n}."),
        "Field must have maximum length of {n}.": _("Field must have maximum length of {n}."),
        "Field must have minimum value of {n}.": _("Field must have minimum value of {n}."),
        "Field must have maximum value of {n}.": _("Field must have maximum value of {n}."),
    }
