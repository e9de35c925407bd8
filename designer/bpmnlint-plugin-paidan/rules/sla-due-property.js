// A user task's `sla_due` camunda property says whether its camunda:dueDate follows the SLA
// clock (`clock`, the default) or stays the task's own expression (`own`). Any other value, or
// the property on another element, would be ignored without anyone noticing; the engine
// refuses it at deploy (app/engine/lint.py, sla-due-property).
const { is } = require('bpmnlint-utils');
const { inExecutableProcess } = require('./camunda');
const { propertiesOf } = require('./sla-timer-property');

const VALUES = ['clock', 'own'];

module.exports = function () {
  function check(node, reporter) {
    if (!node.extensionElements || !inExecutableProcess(node)) return;
    const value = propertiesOf(node).sla_due;
    if (value === undefined) return;
    if (!is(node, 'bpmn:UserTask')) {
      reporter.report(
        node.id,
        '属性 sla_due 只能用在用户任务上 / property sla_due applies to user tasks only',
      );
    } else if (!VALUES.includes(value)) {
      reporter.report(
        node.id,
        `属性 sla_due 的值「${value}」无效，应为 clock（截止时间跟随 SLA）或 own（用任务自己的 dueDate） / ` +
          `property sla_due is "${value}"; it must be clock (the due date follows the SLA) or own (the task's own dueDate)`,
      );
    }
  }
  return { check };
};
