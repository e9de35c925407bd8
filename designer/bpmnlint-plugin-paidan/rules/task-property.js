// A camunda property of user tasks that another part of Paidan reads (mirrors _TASK_PROPERTIES
// in app/engine/lint.py): on anything but a user task, or with a value its reader cannot use,
// it would be ignored without anyone noticing, so the engine refuses it at deploy.
const { is } = require('bpmnlint-utils');
const { inExecutableProcess } = require('./camunda');
const { propertiesOf } = require('./sla-timer-property');

/** A bpmnlint rule for the property `name`, which takes one of `values`. */
function taskPropertyRule(name, values, allowedZh, allowedEn) {
  return function rule() {
    function check(node, reporter) {
      if (!node.extensionElements || !inExecutableProcess(node)) return;
      const value = propertiesOf(node)[name];
      if (value === undefined) return;
      if (!is(node, 'bpmn:UserTask')) {
        reporter.report(
          node.id,
          `属性 ${name} 只能用在用户任务上 / property ${name} applies to user tasks only`,
        );
      } else if (!values.includes(value)) {
        reporter.report(
          node.id,
          `属性 ${name} 的值「${value}」无效，应为 ${allowedZh} / ` +
            `property ${name} is "${value}"; it must be ${allowedEn}`,
        );
      }
    }
    return { check };
  };
}

module.exports = { taskPropertyRule };
