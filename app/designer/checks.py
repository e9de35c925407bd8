"""Validating a draft: the engine's deploy checks, collected, plus what a draft adds to them.

The engine's checks (app.engine.service.inspect) are the ones deploy applies, so "validate"
can never pass a draft that deploy then refuses. A draft adds: its diagram must hold the
process of its key, marked executable, and no other executable process (a draft deploys one
process), and each form is filed under its own id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from app.engine import parser as bpmn
from app.engine.service import inspect

ENGINE_NO_PROCESS = "no-executable-process"


@dataclass
class Sources:
    """The files of one process as the designer edits them and a version stores them."""

    key: str
    bpmn_filename: str
    bpmn_xml: str
    dmn: dict[str, str] = field(default_factory=dict)  # filename -> DMN XML
    forms: dict[str, dict] = field(default_factory=dict)  # form id -> form-js schema

    def files(self) -> list[tuple[str, bytes]]:
        """The sources as the files engine.deploy takes (a form without an id takes its key)."""
        files = [(self.bpmn_filename, self.bpmn_xml.encode("utf-8"))]
        files += [(name, text.encode("utf-8")) for name, text in sorted(self.dmn.items())]
        for form_id, schema in sorted(self.forms.items()):
            named = {**schema, "id": schema.get("id") or form_id}
            files.append((f"{form_id}.form", json.dumps(named, ensure_ascii=False).encode()))
        return files


def problem_answer(problem: bpmn.Problem) -> dict:
    return {
        "element_id": problem.element_id,
        "file": problem.file,
        "severity": problem.severity,
        "code": problem.code,
        "message_zh": problem.zh,
        "message_en": problem.en,
    }


def validate(sources: Sources) -> list[bpmn.Problem]:
    """Every problem of the draft, errors and warnings, the draft's own first."""
    own = _process_problems(sources) + _form_problems(sources)
    engine_problems = inspect(sources.files()).problems
    if own:  # the draft's own problem says better which process is missing
        engine_problems = [p for p in engine_problems if p.code != ENGINE_NO_PROCESS]
    return own + engine_problems


def _process_problems(sources: Sources) -> list[bpmn.Problem]:
    root, _unreadable = bpmn.read_xml(sources.bpmn_filename, sources.bpmn_xml.encode("utf-8"))
    if root is None:
        return []  # the engine's checks name the file and line
    key, filename = sources.key, sources.bpmn_filename
    processes = root.findall("bpmn:process", bpmn.NS)
    mine = next((process for process in processes if process.get("id") == key), None)
    found: list[bpmn.Problem] = []
    if mine is None:
        found.append(
            bpmn.Problem(
                "process-missing",
                f"文件 {filename} 中没有 id 为 {key} 的流程：流程的 id 必须是草稿的标识 {key}",
                f"file {filename} has no process with the id {key}: the process id must be "
                f"the draft's key {key}",
                filename,
            )
        )
    elif mine.get("isExecutable", "true").lower() != "true":
        found.append(
            bpmn.Problem(
                "process-not-executable",
                f'文件 {filename}：流程 {key} 没有标记为可执行（缺少 isExecutable="true"），'
                "引擎不会运行它；在属性面板中勾选“可执行”",
                f'file {filename}: process {key} is not marked executable (isExecutable="true" '
                'is missing), so the engine would not run it; tick "Executable" in the '
                "properties panel",
                filename,
                key,
            )
        )
    for other in bpmn.executable_processes(root):
        if other is not mine:
            ident = other.get("id")
            found.append(
                bpmn.Problem(
                    "process-other-executable",
                    f"文件 {filename}：流程 {ident} 也标记为可执行，但草稿只部署流程 {key}；"
                    "把它设为不可执行，或作为单独的流程设计",
                    f"file {filename}: process {ident} is marked executable too, but this draft "
                    f"deploys process {key} only; mark it not executable or design it as a "
                    "process of its own",
                    filename,
                    ident,
                )
            )
    return found


def _form_problems(sources: Sources) -> list[bpmn.Problem]:
    found = []
    for form_id, schema in sorted(sources.forms.items()):
        inner = schema.get("id")
        if inner and inner != form_id:
            found.append(
                bpmn.Problem(
                    "form-id-mismatch",
                    f"表单 {form_id} 的 id 写的是 {inner}：两者必须相同",
                    f"form {form_id} says its id is {inner}: the two must be the same",
                    f"{form_id}.form",
                )
            )
    return found
