// bpmn-js writes a plane's shapes and edges anew from what it drew (BpmnDiOrdering, at
// saveXML). Diagram elements it did not draw (a process no participant refers to, an edge
// without bpmnElement) would silently vanish from a file saved back. This module puts them
// back after the ordering. A shape deleted in the editor has left its plane already
// (BpmnUpdater), so only what was never drawn is kept.
const BEFORE_ORDERING = 2500;
const AFTER_ORDERING = 1500;

function KeepUndrawnDi(eventBus, bpmnjs) {
  let remembered = [];

  eventBus.on('saveXML.start', BEFORE_ORDERING, () => {
    const definitions = bpmnjs.getDefinitions();
    remembered = (definitions?.diagrams || [])
      .filter((diagram) => diagram.plane)
      .map((diagram) => [diagram.plane, [...(diagram.plane.planeElement || [])]]);
  });

  eventBus.on('saveXML.start', AFTER_ORDERING, () => {
    for (const [plane, before] of remembered) {
      const now = plane.get('planeElement');
      const kept = new Set(now);
      for (const di of before) if (!kept.has(di)) now.push(di);
    }
    remembered = [];
  });
}

KeepUndrawnDi.$inject = ['eventBus', 'bpmnjs'];

export default {
  __init__: ['keepUndrawnDi'],
  keepUndrawnDi: ['type', KeepUndrawnDi],
};
