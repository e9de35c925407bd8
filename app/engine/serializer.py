"""Saving and loading workflows without their specs.

SpiffWorkflow's serializer writes the whole spec into every saved workflow. The spec lives
once per definition version instead, so the per-instance state stays small (a few KB) and
loading an instance reuses the spec object already restored for its version.
"""

from __future__ import annotations

import json
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_FORMAT
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.util.deep_merge import DeepMerge

# Bumped whenever what we store changes; stored on every instance next to SpiffWorkflow's own.
PAIDAN_FORMAT = "1"
STATE_FORMAT = f"spiff-{SPIFF_FORMAT}/paidan-{PAIDAN_FORMAT}"


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Top-level workflow converter that leaves the specs out and takes them back on load."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


SERIALIZER = _make_serializer()


def _dumps(obj) -> str:
    # The encoder mode makes the registry emit JSON-safe values (datetimes, UUIDs) as
    # serialize_json() does; kept in a try/finally like SpiffWorkflow's own code.
    registry = SERIALIZER.registry
    registry._encoder_mode = True
    try:
        return json.dumps(
            SERIALIZER.to_dict(obj), cls=SERIALIZER._encoder_cls, separators=(",", ":")
        )
    finally:
        registry._encoder_mode = False


def dump_specs(spec, subprocess_specs: dict) -> str:
    registry = SERIALIZER.registry
    return json.dumps(
        {
            "spec": registry.convert(spec),
            "subprocess_specs": {k: registry.convert(v) for k, v in subprocess_specs.items()},
        },
        separators=(",", ":"),
    )


def restore_specs(spec_json: str):
    """The spec objects of a definition version from their stored JSON."""
    dct = json.loads(spec_json)
    registry = SERIALIZER.registry
    spec = registry.restore(dct["spec"])
    subprocess_specs = {k: registry.restore(v) for k, v in dct["subprocess_specs"].items()}
    return spec, subprocess_specs


def dump_state(workflow: BpmnWorkflow) -> str:
    return _dumps(workflow)


def load_data(state: str) -> dict:
    """The data of a saved workflow as its last task sees it (``workflow.last_task.data``, else
    ``workflow.data``), read from the saved dict without restoring the workflow.

    Restoring builds every task, each pointing at its workflow and the workflow at them: a
    caller that wants only the data (dispatch ranks on it) left ~90 objects per read for the
    garbage collector, whose collection of them paused a decision for ~13 ms. A task saved
    with a delta holds only what changed from its parent, so the data is rebuilt along the
    parent chain exactly as SpiffWorkflow's TaskConverter.from_dict does (its DeepMerge and
    registry included); tests compare the two on every shipped process.
    """
    dct = json.loads(state)
    registry = SERIALIZER.registry
    tasks = dct["tasks"]
    task = tasks.get(dct["last_task"]) if isinstance(dct["last_task"], str) else None
    if task is None:
        return registry.restore(dct.get("data", {}))
    chain = [task]
    while chain[-1].get("delta") and chain[-1]["parent"] in tasks:
        chain.append(tasks[chain[-1]["parent"]])
    data = registry.restore(chain.pop()["data"])
    for task in reversed(chain):
        delta = task["delta"]
        data = DeepMerge.merge({}, data)
        data.update(registry.restore(delta.get("updates", {})))
        for key in delta.get("deletions", {}):
            data.pop(key, None)
    return data


def load_state(state: str, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
    dct = json.loads(state)
    workflow = SERIALIZER.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow
