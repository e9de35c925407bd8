// Timer definitions are Python expressions in this engine: a bare ISO 8601 value such as PT4H
// is read as a variable name and fails only when the timer starts. The engine refuses it at
// deploy; here the fix is named while drawing: write it with quotes, "PT4H".
const { is } = require('bpmnlint-utils');
const { inExecutableProcess } = require('./camunda');

const ISO_LITERAL =
  /^(R\d*\/)?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;

module.exports = function () {
  function check(node, reporter) {
    if (!is(node, 'bpmn:TimerEventDefinition')) return;
    const event = node.$parent;
    if (!event || !inExecutableProcess(event)) return;
    for (const field of ['timeDuration', 'timeDate', 'timeCycle']) {
      const text = ((node[field] && node[field].body) || '').trim();
      if (ISO_LITERAL.test(text)) {
        reporter.report(
          event.id,
          `定时器表达式 ${text} 会被当作变量名，ISO 8601 时长要加引号："${text}" / ` +
            `Timer expression ${text} would be read as a variable name: quote it, "${text}"`,
        );
      }
    }
  }
  return { check };
};
