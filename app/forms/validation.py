"""Server-side validation of data submitted for a form-js schema.

The same schema renders the form in the browser; here it decides what reaches the engine:
only the form's own fields, each of the right type and within its rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from app.errors import InvalidInput

_INPUT_TYPES = {
    "textfield",
    "textarea",
    "number",
    "checkbox",
    "select",
    "radio",
    "checklist",
    "taglist",
    "datetime",
    "expression",
}
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def read_form(filename: str, data: bytes) -> dict:
    """Parse an uploaded .form file and check that it is a form-js schema with an id."""
    try:
        schema = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"表单文件 {filename} 不是有效的 JSON：{exc}",
            f"form file {filename} is not valid JSON: {exc}",
        ) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("components"), list):
        raise InvalidInput(
            f"表单文件 {filename} 不是 form-js 表单（缺少 components 列表）",
            f"form file {filename} is not a form-js schema (no components list)",
        )
    form_id = schema.get("id")
    if not isinstance(form_id, str) or not form_id:
        raise InvalidInput(f"表单文件 {filename} 缺少 id", f"form file {filename} has no id")
    for component in fields(schema):
        key = component.get("key")
        if not isinstance(key, str) or not _IDENTIFIER.match(key):
            raise InvalidInput(
                f"表单 {form_id}：字段 {component.get('id')} 的 key `{key}` 不是有效的变量名",
                f"form {form_id}: field {component.get('id')} has key `{key}`, "
                "which is not a valid variable name",
            )
    return schema


def fields(schema: dict) -> Iterator[dict]:
    """The input components of a schema, groups included."""
    for component in schema.get("components", []):
        if component.get("type") in _INPUT_TYPES and component.get("key"):
            yield component
        if isinstance(component.get("components"), list):
            yield from fields(component)


def validate(schema: dict | None, data: dict) -> dict:
    """Return the cleaned data, or raise InvalidInput naming every wrong field."""
    if not isinstance(data, dict):
        raise InvalidInput("表单数据必须是对象", "form data must be an object")
    if schema is None:
        bad = [key for key in data if not _IDENTIFIER.match(str(key))]
        if bad:
            raise InvalidInput(
                f"字段名无效：{', '.join(map(str, bad))}",
                f"invalid field names: {', '.join(map(str, bad))}",
            )
        return dict(data)

    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    known = {component["key"]: component for component in fields(schema)}
    for key in data:
        if key not in known:
            errors[str(key)] = [
                f"表单 {schema['id']} 没有字段 {key} / form {schema['id']} has no field {key}"
            ]
    for key, component in known.items():
        if component.get("type") == "expression":
            continue
        label = component.get("label") or key
        # A field left out takes the schema's default, as the browser form would send it.
        value = data[key] if key in data else component.get("defaultValue")
        problem = _check(component, label, value)
        if problem:
            errors[key] = [problem]
        elif key in data or "defaultValue" in component:
            cleaned[key] = _clean(component, value)
    if errors:
        names = ", ".join(sorted(errors))
        raise InvalidInput(
            f"表单 {schema['id']} 有字段填写不正确：{names}",
            f"form {schema['id']} has invalid fields: {names}",
            errors=errors,
        )
    return cleaned


def _empty(value) -> bool:
    return value is None or value == "" or value == []


def _check(component: dict, label: str, value) -> str | None:
    rules = component.get("validate") or {}
    kind = component.get("type")
    if _empty(value):
        if rules.get("required"):
            return f"{label}：必填 / required"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                return f"{label}：必须是数字 / must be a number"
        if rules.get("min") is not None and value < rules["min"]:
            return f"{label}：不能小于 {rules['min']} / must be at least {rules['min']}"
        if rules.get("max") is not None and value > rules["max"]:
            return f"{label}：不能大于 {rules['max']} / must be at most {rules['max']}"
        return None
    if kind == "checkbox":
        return (
            None
            if isinstance(value, bool)
            else f"{label}：必须是 true 或 false / must be true or false"
        )
    if kind in {"select", "radio"}:
        allowed = [option.get("value") for option in component.get("values") or []]
        if allowed and value not in allowed:
            return f"{label}：只能是 {', '.join(map(str, allowed))} / must be one of {allowed}"
        return None
    if kind in {"checklist", "taglist"}:
        allowed = [option.get("value") for option in component.get("values") or []]
        if not isinstance(value, list) or (allowed and any(v not in allowed for v in value)):
            return f"{label}：只能从 {', '.join(map(str, allowed))} 中选择 / must be a list of {allowed}"
        return None
    if not isinstance(value, str):
        return f"{label}：必须是文本 / must be text"
    if rules.get("minLength") and len(value) < rules["minLength"]:
        return f"{label}：至少 {rules['minLength']} 个字 / at least {rules['minLength']} characters"
    if rules.get("maxLength") and len(value) > rules["maxLength"]:
        return f"{label}：最多 {rules['maxLength']} 个字 / at most {rules['maxLength']} characters"
    if rules.get("pattern") and not re.fullmatch(rules["pattern"], value):
        return f"{label}：格式不正确 / does not match the required format"
    return None


def _clean(component: dict, value):
    if component.get("type") == "number" and not _empty(value) and isinstance(value, str):
        number = float(value)
        return int(number) if number.is_integer() else number
    if isinstance(value, str):
        return value.strip()
    return value
