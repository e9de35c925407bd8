"""Safe evaluation of diagram expressions and scripts: conditions, timers, DMN entries, scripts.

Two layers: a static check (``check_expression`` / ``check_script``) that deploy runs on every
expression with the element id, and a runtime evaluator built on simpleeval that repeats the
check, so nothing reaches evaluation that the check would refuse.
"""

from __future__ import annotations

import ast
import math
from collections import ChainMap
from collections.abc import Callable, MutableMapping
from functools import lru_cache

from simpleeval import DISALLOW_METHODS, EvalWithCompoundTypes

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

    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh = zh
        self.en = en


def register_helper(name: str, function: Callable) -> None:
    """Make ``function`` callable by name from every diagram expression."""
    _HELPERS[name] = function


def functions() -> dict[str, Callable]:
    return {**SAFE_BUILTINS, **_HELPERS}


def _refuse(zh: str, en: str) -> None:
    raise ExpressionError(zh, en)


def _check_tree(tree: ast.AST, allowed: tuple[type, ...]) -> None:
    callable_names = functions()
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            kind = type(node).__name__
            _refuse(f"不允许使用 {kind} 语法", f"{kind} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            _refuse(
                f"不允许使用以下划线开头的名称 `{node.id}`",
                f"names starting with an underscore are not allowed: `{node.id}`",
            )
        if isinstance(node, ast.Attribute) and (
            node.attr.startswith("_") or node.attr in DISALLOW_METHODS
        ):
            _refuse(f"不允许访问属性 `{node.attr}`", f"attribute `{node.attr}` is not allowed")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id not in callable_names
        ):
            allowed_names = ", ".join(sorted(callable_names))
            _refuse(
                f"不允许调用函数 `{node.func.id}`（可用：{allowed_names}）",
                f"function `{node.func.id}` is not allowed (allowed: {allowed_names})",
            )
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    _refuse("只能给变量名赋值", "only plain variable names can be assigned")


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> ast.expr:
    """Parse and check one expression; the result is cached because diagrams repeat them."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"表达式 `{text}` 语法错误：{exc.msg}", f"expression `{text}` is not valid: {exc.msg}"
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
        ) from None
    _check_tree(tree, _STATEMENT_NODES + _EXPRESSION_NODES)
    return tuple(tree.body)


def check_expression(text: str) -> None:
    parse_expression(text)


def check_script(text: str) -> None:
    parse_script(text)


def evaluate(text: str, names: MutableMapping | ChainMap) -> object:
    """Evaluate an expression against ``names`` (usually the task data)."""
    evaluator = EvalWithCompoundTypes(functions=functions(), names=names)
    return evaluator.eval(text, previously_parsed=parse_expression(text))


def execute(text: str, names: MutableMapping) -> None:
    """Run a script; assignments write into ``names``."""
    evaluator = EvalWithCompoundTypes(functions=functions(), names=names)
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
