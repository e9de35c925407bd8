// Checks that every BPMN and DMN file in a folder imports cleanly, as bpmn-js and dmn-js would
// import it, and that every BPMN flow node and sequence flow is drawn.
//
// Usage: node scripts/check-diagrams.mjs <folder>   (exit code 1 on any problem)

import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import { BpmnModdle } from 'bpmn-moddle';
import { DmnModdle } from 'dmn-moddle';

const require = createRequire(import.meta.url);
const camundaSchema = require('camunda-bpmn-moddle/resources/camunda.json');

/** Flow elements of a process or sub-process, sub-processes included. */
function collectFlowElements(container, found = []) {
  for (const element of container.flowElements || []) {
    found.push(element);
    if (element.flowElements) {
      collectFlowElements(element, found);
    }
  }
  return found;
}

function describe(element) {
  const name = element.name ? ` "${element.name}"` : '';
  return `${element.$type} ${element.id}${name}`;
}

function formatWarning(warning) {
  const message = String(warning.message || warning).split('\n')[0];
  const element = warning.element && warning.element.id ? ` (element ${warning.element.id})` : '';
  return `import warning: ${message}${element}`;
}

async function checkBpmn(xml) {
  const moddle = new BpmnModdle({ camunda: camundaSchema });
  const { rootElement: definitions, warnings } = await moddle.fromXML(xml);
  const problems = warnings.map(formatWarning);

  const flowElements = definitions.rootElements
    .filter((root) => root.$instanceOf('bpmn:Process'))
    .flatMap((process) => collectFlowElements(process));
  const flowNodes = flowElements.filter((element) => element.$instanceOf('bpmn:FlowNode'));
  const sequenceFlows = flowElements.filter((element) => element.$instanceOf('bpmn:SequenceFlow'));

  const shapes = new Set();
  const edges = new Map();
  for (const diagram of definitions.diagrams || []) {
    for (const di of (diagram.plane && diagram.plane.planeElement) || []) {
      if (!di.bpmnElement) {
        problems.push(`${di.$type} ${di.id} does not point to any element`);
      } else if (di.$instanceOf('bpmndi:BPMNShape')) {
        shapes.add(di.bpmnElement);
      } else if (di.$instanceOf('bpmndi:BPMNEdge')) {
        edges.set(di.bpmnElement, di);
      }
    }
  }

  for (const node of flowNodes) {
    if (!shapes.has(node)) {
      problems.push(`${describe(node)} has no BPMNShape`);
    }
  }
  for (const flow of sequenceFlows) {
    const edge = edges.get(flow);
    if (!edge) {
      problems.push(`${describe(flow)} has no BPMNEdge`);
    } else if (!edge.waypoint || edge.waypoint.length < 2) {
      problems.push(`${describe(flow)}: its BPMNEdge has fewer than 2 waypoints`);
    }
  }

  const summary = `${flowNodes.length} flow nodes, ${sequenceFlows.length} sequence flows`;
  return { problems, summary };
}

async function checkDmn(xml) {
  const moddle = new DmnModdle();
  const { rootElement: definitions, warnings } = await moddle.fromXML(xml);
  const problems = warnings.map(formatWarning);

  const decisions = (definitions.drgElement || []).filter((element) =>
    element.$instanceOf('dmn:Decision'),
  );
  const drawn = new Set();
  for (const diagram of (definitions.dmnDI && definitions.dmnDI.diagrams) || []) {
    for (const di of diagram.diagramElements || []) {
      if (di.dmnElementRef) {
        drawn.add(di.dmnElementRef);
      }
    }
  }
  for (const decision of decisions) {
    if (!drawn.has(decision)) {
      problems.push(`${describe(decision)} has no DMNShape (dmn-js cannot open the DRD)`);
    }
  }
  if (decisions.length === 0) {
    problems.push('no decision found');
  }

  return { problems, summary: `${decisions.length} decision(s)` };
}

const CHECKERS = { '.bpmn': checkBpmn, '.dmn': checkDmn };

async function main() {
  const folder = process.argv[2];
  if (!folder) {
    console.error('usage: node scripts/check-diagrams.mjs <folder>');
    return 2;
  }

  let files;
  try {
    files = (await readdir(folder)).filter((name) => CHECKERS[path.extname(name)]).sort();
  } catch (error) {
    console.error(`FAIL ${folder}: cannot read the folder (${error.code || error.message})`);
    return 1;
  }
  if (files.length === 0) {
    console.error(`FAIL ${folder}: no .bpmn or .dmn file found`);
    return 1;
  }

  let failed = 0;
  for (const name of files) {
    const file = path.join(folder, name);
    let result;
    try {
      result = await CHECKERS[path.extname(name)](await readFile(file, 'utf8'));
    } catch (error) {
      result = { problems: [`import error: ${error.message}`], summary: 'not imported' };
    }
    if (result.problems.length) {
      failed += 1;
      console.log(`FAIL ${file} (${result.summary})`);
      for (const problem of result.problems) {
        console.log(`  - ${problem}`);
      }
    } else {
      console.log(`ok   ${file} (${result.summary}, no warnings)`);
    }
  }

  console.log(`${files.length - failed} of ${files.length} diagram file(s) ok`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
