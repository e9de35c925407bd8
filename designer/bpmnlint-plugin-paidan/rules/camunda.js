// Reading Camunda 7 attributes whether or not the moddle knows the camunda namespace
// (bpmn-js with camunda-bpmn-moddle does; the bpmnlint command line does not).
const CAMUNDA_URI = 'http://camunda.org/schema/1.0/bpmn';

function camundaAttribute(node, name) {
  if (typeof node.get === 'function') {
    try {
      const value = node.get(`camunda:${name}`);
      if (value !== undefined) return value;
    } catch (error) {
      // an unknown namespace prefix: look in $attrs below
    }
  }
  const attrs = node.$attrs || {};
  const prefixes = new Set(['camunda']);
  for (let parent = node; parent; parent = parent.$parent) {
    for (const [key, uri] of Object.entries(parent.$attrs || {})) {
      if (key.startsWith('xmlns:') && uri === CAMUNDA_URI) prefixes.add(key.slice(6));
    }
  }
  for (const prefix of prefixes) {
    if (attrs[`${prefix}:${name}`] !== undefined) return attrs[`${prefix}:${name}`];
  }
  return undefined;
}

/** Whether the node belongs to an executable process: the engine checks only those. */
function inExecutableProcess(node) {
  for (let parent = node.$parent; parent; parent = parent.$parent) {
    if (parent.$type === 'bpmn:Process') return Boolean(parent.isExecutable);
  }
  return false;
}

module.exports = { camundaAttribute, inExecutableProcess };
