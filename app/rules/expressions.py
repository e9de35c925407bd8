"""Safe evaluation of diagram expressions and scripts: conditions, timers, DMN entries, scripts.

Two layers: a static check (``check_expression`` / ``check_script``) that deploy runs on every
expression with the element id, and a runtime evaluator built on simpleeval that repeats the
check, so nothing reaches evaluation that the check would refuse.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import ChainMap
from collections.abc import Callable, MutableMapping
from functools import lru_cache

from simpleeval import (
    DEFAULT_OPERATORS,
    DISALLOW_METHODS,
    EvalWithCompoundTypes,
    IterableTooLong,
    NumberTooHigh,
    safe_power,
)

# Functions every expression may call, besides the registered helpers.
SAFE_BUILTINS: dict[str, Callable] = {
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "ceil": math.ceil,
    "dict": dict,
    "float": float,
    "floor": math.floor,
    "int": int,
    "len": len,
    "list": list,
    "max": max,
    "min": min,
    "round": round,
    "set": set,
    "sorted": sorted,
    "str": str,
    "sum": sum,
    "tuple": tuple,
}

# Methods expressions may call: read-only, and none can build a value much larger than its
# input (rjust, zfill, center, format, replace and join could build strings of any size).
SAFE_ATTRIBUTES = frozenset(
    {
        "get",
        "keys",
        "values",
        "items",
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "split",
        "count",
        "find",
        "isdigit",
        "isalpha",
    }
)
# Numbers past these bounds are refused: 10**3999999 is legal for simpleeval and costs seconds.
MAX_EXPONENT = 1000
MAX_FORMAT_WIDTH = 1000
_FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d*)(?:\.(\*|\d+))?")

_HELPERS: dict[str, Callable] = {}

_EXPRESSION_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.Subscript,
    ast.Slice,
    ast.Attribute,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.keyword,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
_STATEMENT_NODES = (ast.Module, ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.Pass)


class ExpressionError(ValueError):
    """An expression or script that is not allowed or does not parse."""

    def __init__(self, zh: str, en: str, *, syntax: bool = False):
        super().__init__(en)
        self.zh = zh
        self.en = en
        self.syntax = syntax  # the text does not parse (as opposed to: it parses but is refused)


def register_helper(name: str, function: Callable) -> None:
    """Make ``function`` callable by name from every diagram expression."""
    _HELPERS[name] = function


def functions() -> dict[str, Callable]:
    return {**SAFE_BUILTINS, **_HELPERS}


def _refuse(zh: str, en: str) -> None:
    raise ExpressionError(zh, en)


def _check_tree(tree: ast.AST, allowed: tuple[type, ...]) -> None:
    """Refuse the tree if any node is not allowed, naming the most telling problem.

    Problems are ranked (underscore names, escape attributes, statements and syntax that are
    not allowed, unknown functions, other attributes) and the outermost of the best rank is
    named, so `__import__('os').system('id')` is refused for `__import__`, not for `system`.
    """
    callable_names = functions()
    problems: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            kind = type(node).__name__
            problems.append((2, f"不允许使用 {kind} 语法", f"{kind} is not allowed"))
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            problems.append(
                (
                    0,
                    f"不允许使用以下划线开头的名称 `{node.id}`",
                    f"names starting with an underscore are not allowed: `{node.id}`",
                )
            )
        elif isinstance(node, ast.Attribute) and node.attr not in SAFE_ATTRIBUTES:
            allowed_attributes = ", ".join(sorted(SAFE_ATTRIBUTES))
            problems.append(
                (
                    1 if node.attr.startswith("_") or node.attr in DISALLOW_METHODS else 4,
                    f"不允许访问属性 `{node.attr}`（可用：{allowed_attributes}）",
                    f"attribute `{node.attr}` is not allowed (allowed: {allowed_attributes})",
                )
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id not in callable_names
        ):
            allowed_names = ", ".join(sorted(callable_names))
            problems.append(
                (
                    3,
                    f"不允许调用函数 `{node.func.id}`（可用：{allowed_names}）",
                    f"function `{node.func.id}` is not allowed (allowed: {allowed_names})",
                )
            )
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            problems.append(
                (5, "f-string 中不允许使用格式说明", "format specs in f-strings are not allowed")
            )
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(not isinstance(target, ast.Name) for target in targets):
                problems.append(
                    (4, "只能给变量名赋值", "only plain variable names can be assigned")
                )
    if problems:
        _, zh, en = min(problems, key=lambda problem: problem[0])  # min keeps the first
        _refuse(zh, en)


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> ast.expr:
    """Parse and check one expression; the result is cached because diagrams repeat them."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"表达式 `{text}` 语法错误：{exc.msg}",
            f"expression `{text}` is not valid: {exc.msg}",
            syntax=True,
        ) from None
    _check_tree(tree, _EXPRESSION_NODES)
    return tree.body


@lru_cache(maxsize=1024)
def parse_script(text: str) -> tuple[ast.stmt, ...]:
    """Parse and check a script: assignments, expressions and if-statements only."""
    try:
        tree = ast.parse(text.strip())
    except SyntaxError as exc:
        raise ExpressionError(
            f"脚本第 {exc.lineno} 行语法错误：{exc.msg}",
            f"script line {exc.lineno} is not valid: {exc.msg}",
            syntax=True,
        ) from None
    _check_tree(tree, _STATEMENT_NODES + _EXPRESSION_NODES)
    return tuple(tree.body)


def check_expression(text: str) -> None:
    parse_expression(text)


def check_script(text: str) -> None:
    parse_script(text)


def _power(base, exponent):
    if isinstance(exponent, int | float) and abs(exponent) > MAX_EXPONENT:
        raise NumberTooHigh(f"exponent {exponent} is above {MAX_EXPONENT}")
    return safe_power(base, exponent)


def _modulo(left, right):
    if isinstance(left, str):
        for width, precision in _FORMAT_WIDTH.findall(left):
            if (
                "*" in (width, precision)
                or max(int(width or 0), int(precision or 0)) > MAX_FORMAT_WIDTH
            ):
                raise IterableTooLong(f"a format width above {MAX_FORMAT_WIDTH} is refused")
    return operator.mod(left, right)


_OPERATORS = {**DEFAULT_OPERATORS, ast.Pow: _power, ast.Mod: _modulo}


def _evaluator(names) -> EvalWithCompoundTypes:
    return EvalWithCompoundTypes(operators=_OPERATORS, functions=functions(), names=names)


def evaluate(text: str, names: MutableMapping | ChainMap) -> object:
    """Evaluate an expression against ``names`` (usually the task data)."""
    return _evaluator(names).eval(text, previously_parsed=parse_expression(text))


def execute(text: str, names: MutableMapping) -> None:
    """Run a script; assignments write into ``names``."""
    evaluator = _evaluator(names)
    evaluator.expr = text
    _run(parse_script(text), evaluator, names)


def _run(statements: tuple[ast.stmt, ...] | list[ast.stmt], evaluator, names) -> None:
    for statement in statements:
        if isinstance(statement, ast.Assign):
            value = evaluator._eval(statement.value)
            for target in statement.targets:
                names[target.id] = value
        elif isinstance(statement, ast.AugAssign):
            current = names[statement.target.id]
            operation = evaluator.operators[type(statement.op)]
            names[statement.target.id] = operation(current, evaluator._eval(statement.value))
        elif isinstance(statement, ast.Expr):
            evaluator._eval(statement.value)
        elif isinstance(statement, ast.If):
            branch = statement.body if evaluator._eval(statement.test) else statement.orelse
            _run(branch, evaluator, names)
