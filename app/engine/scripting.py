"""The script environment SpiffWorkflow runs diagram expressions in: the safe evaluator."""

from __future__ import annotations

from collections import ChainMap

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from app.rules.expressions import evaluate, execute


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Replaces SpiffWorkflow's eval/exec environment with app.rules.expressions."""

    def evaluate(self, expression, context, external_context=None):
        names = ChainMap(context, external_context) if external_context else context
        return evaluate(expression, names)

    def execute(self, script, context, external_context=None):
        execute(script, context)
        return True

    def call_service(self, context, **kwargs):
        raise ValueError("service tasks are not supported / 不支持服务任务")


SCRIPT_ENGINE = PythonScriptEngine(environment=SafeEnvironment())
