// Paidan's bpmnlint rules. They mirror the engine's own deploy checks, so an admin sees while
// drawing what validation and deploy would refuse. CommonJS: bpmnlint resolves rules with
// require() when the config is packed at build time.
module.exports = {
  configs: {
    engine: {
      rules: {
        'user-task-assignment': 'error',
        'unconnected-flow-node': 'error',
        'timer-expression': 'error',
        'sla-timer-property': 'error',
        'sla-due-property': 'error',
        'dispatch-mode-property': 'error',
      },
    },
  },
  rules: {
    'user-task-assignment': './rules/user-task-assignment',
    'unconnected-flow-node': './rules/unconnected-flow-node',
    'timer-expression': './rules/timer-expression',
    'sla-timer-property': './rules/sla-timer-property',
    'sla-due-property': './rules/sla-due-property',
    'dispatch-mode-property': './rules/dispatch-mode-property',
  },
};
