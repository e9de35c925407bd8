// Every flow node must be reachable and lead on: a start event needs a way out, an end event a
// way in, everything else both. The engine refuses such a diagram at deploy, so it is an error
// here too (bpmnlint's no-disconnected only catches nodes with no flow at all).
const { is, isAny } = require('bpmnlint-utils');
const { inExecutableProcess } = require('./camunda');

function isCompensation(node) {
  if (node.isForCompensation) return true;
  return (
    is(node, 'bpmn:BoundaryEvent') &&
    (node.eventDefinitions || []).some((definition) =>
      is(definition, 'bpmn:CompensateEventDefinition'),
    )
  );
}

function hasLink(node) {
  return (node.eventDefinitions || []).some((definition) =>
    is(definition, 'bpmn:LinkEventDefinition'),
  );
}

module.exports = function () {
  function check(node, reporter) {
    if (!is(node, 'bpmn:FlowNode') || isCompensation(node) || !inExecutableProcess(node)) return;
    if (is(node, 'bpmn:SubProcess') && node.triggeredByEvent) return;
    if (is(node.$parent, 'bpmn:AdHocSubProcess')) return;

    const needsIn = !isAny(node, ['bpmn:StartEvent', 'bpmn:BoundaryEvent']) &&
      !(is(node, 'bpmn:IntermediateCatchEvent') && hasLink(node));
    const needsOut = !is(node, 'bpmn:EndEvent') &&
      !(is(node, 'bpmn:IntermediateThrowEvent') && hasLink(node));

    const missingIn = needsIn && !(node.incoming || []).length;
    const missingOut = needsOut && !(node.outgoing || []).length;
    if (missingIn && missingOut) {
      reporter.report(node.id, '元素没有连接任何顺序流 / Element is not connected by any sequence flow');
    } else if (missingIn) {
      reporter.report(node.id, '元素没有连入的顺序流 / Element has no incoming sequence flow');
    } else if (missingOut) {
      reporter.report(node.id, '元素没有连出的顺序流 / Element has no outgoing sequence flow');
    }
  }
  return { check };
};
