// A user task's `dispatch_mode`, which wins over its group's mode; see task-property.js.
const { taskPropertyRule } = require('./task-property');

module.exports = taskPropertyRule(
  'dispatch_mode',
  ['dispatcher', 'auto', 'pool'],
  'dispatcher（调度员选择）、auto（自动派单）或 pool（工单池）',
  'dispatcher, auto or pool',
);
