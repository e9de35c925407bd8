// The BPMN diagram island of the work-order page (bpmn-js viewer with step markers).
