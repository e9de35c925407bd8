// A user task's `sla_due`: its camunda:dueDate follows the SLA clock (`clock`, the default) or
// stays the task's own expression (`own`); see task-property.js.
const { taskPropertyRule } = require('./task-property');

module.exports = taskPropertyRule(
  'sla_due',
  ['clock', 'own'],
  'clock（截止时间跟随 SLA）或 own（用任务自己的 dueDate）',
  "clock (the due date follows the SLA) or own (the task's own dueDate)",
);
