// A user task must say who may do it: camunda:assignee, camunda:candidateGroups or
// camunda:candidateUsers, or a named lane (the engine takes the lane's name as the group).
// The engine refuses to deploy a user task nobody could ever open.
const { is } = require('bpmnlint-utils');
const { camundaAttribute, inExecutableProcess } = require('./camunda');

function lanesOf(container, found = []) {
  for (const laneSet of container.laneSets || (container.laneSet ? [container.laneSet] : [])) {
    for (const lane of laneSet.lanes || []) {
      found.push(lane);
      if (lane.childLaneSet) lanesOf({ laneSets: [lane.childLaneSet] }, found);
    }
  }
  return found;
}

function inNamedLane(node) {
  for (let parent = node.$parent; parent; parent = parent.$parent) {
    for (const lane of lanesOf(parent)) {
      if ((lane.name || '').trim() && (lane.flowNodeRef || []).includes(node)) return true;
    }
    if (is(parent, 'bpmn:Process')) break;
  }
  return false;
}

module.exports = function () {
  function check(node, reporter) {
    if (!is(node, 'bpmn:UserTask') || !inExecutableProcess(node)) return;
    const named = ['assignee', 'candidateGroups', 'candidateUsers'].some((name) =>
      String(camundaAttribute(node, name) || '').trim(),
    );
    if (named || inNamedLane(node)) return;
    reporter.report(
      node.id,
      '用户任务没有处理人、候选组或候选人 / User task has no assignee, candidate group or candidate user',
    );
  }
  return { check };
};
