"""Forms on pages: the form-js schema as the page language shows it.

Admins write labels in both languages ("解决方案 / Solution"); a page shows the side of its
language. The schema the server validates is unchanged: only display texts are picked.
"""

from __future__ import annotations

import copy

from app.i18n import pick

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
        for key in DISPLAY_KEYS:
            if isinstance(component.get(key), str):
                component[key] = pick(component[key], language)
        for option in component.get("values") or []:
            if isinstance(option.get("label"), str):
                option["label"] = pick(option["label"], language)
        if component.get("key"):
            component["id"] = component["key"]
    return localized


def _walk(components: list[dict]):
    for component in components:
        yield component
        yield from _walk(component.get("components") or [])
