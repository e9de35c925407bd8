// A timer boundary event follows an SLA clock when its camunda:properties hold `sla`
// (response or resolution) and optionally `sla_percent` (a number above 0, at most 1000). A
// value the clock cannot use would leave the timer on its own wall-clock expression without
// anyone noticing; the engine refuses it at deploy (app/engine/lint.py, sla-timer-property).
const { is } = require('bpmnlint-utils');
const { inExecutableProcess } = require('./camunda');

const KINDS = ['response', 'resolution'];
const PERCENT_MAX = 1000;

/** name -> value of the camunda:properties of an element (with or without the camunda moddle). */
function propertiesOf(node) {
  const found = {};
  const extensions = (node.extensionElements && node.extensionElements.values) || [];
  for (const extension of extensions) {
    if (!/(^|:)properties$/i.test(extension.$type || '')) continue;
    for (const property of extension.values || extension.$children || []) {
      const name = property.name !== undefined ? property.name : (property.$attrs || {}).name;
      const value = property.value !== undefined ? property.value : (property.$attrs || {}).value;
      if (name !== undefined) found[name] = String(value || '').trim();
    }
  }
  return found;
}

function percentProblem(text) {
  const value = text === '' ? NaN : Number(text);
  if (Number.isNaN(value)) return [`「${text}」不是数字`, `"${text}" is not a number`];
  if (!(value > 0 && value <= PERCENT_MAX)) {
    return [
      `${text} 不在 0（不含）到 ${PERCENT_MAX} 之间`,
      `${text} is not above 0 and at most ${PERCENT_MAX}`,
    ];
  }
  return null;
}

module.exports = function rule() {
  function check(node, reporter) {
    if (!is(node, 'bpmn:BoundaryEvent') || !inExecutableProcess(node)) return;
    const properties = propertiesOf(node);
    if (!('sla' in properties) && !('sla_percent' in properties)) return;
    const timer = (node.eventDefinitions || []).some((d) => is(d, 'bpmn:TimerEventDefinition'));
    if (!timer) {
      reporter.report(
        node.id,
        'SLA 属性只能用在定时器边界事件上 / SLA properties apply to timer boundary events only',
      );
    }
    const kind = properties.sla;
    if (kind === undefined) {
      reporter.report(
        node.id,
        '有 sla_percent 但没有 sla（应为 response 或 resolution） / ' +
          'sla_percent without sla (response or resolution)',
      );
    } else if (!KINDS.includes(kind)) {
      reporter.report(
        node.id,
        `属性 sla 的值「${kind}」无效，应为 response（响应）或 resolution（解决） / ` +
          `property sla is "${kind}"; it must be response or resolution`,
      );
    }
    if ('sla_percent' in properties) {
      const problem = percentProblem(properties.sla_percent);
      if (problem) {
        reporter.report(
          node.id,
          `属性 sla_percent ${problem[0]}，应为大于 0、不超过 ${PERCENT_MAX} 的数 / ` +
            `property sla_percent: ${problem[1]}; it must be a number above 0 and at most ${PERCENT_MAX}`,
        );
      }
    }
  }
  return { check };
};

// Shared with sla-due-property.
module.exports.propertiesOf = propertiesOf;
