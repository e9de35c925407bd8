// The designer's editor island (/designer/<key>): BPMN (bpmn-js + Camunda 7 properties +
// bpmnlint + minimap), DMN (dmn-js with a "try it" panel), forms (form-js editor + preview).
//
// <div id="designer-app" data-key="it_service" data-api="/api/v1/designer" data-lang="zh"></div>
//
// Exposes window.paidanDesigner = {modeler, dmnModeler, formEditor, app, ready} for the
// browser tests; `ready` resolves once the draft is drawn in every tab.
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import 'diagram-js-minimap/assets/diagram-js-minimap.css';
import 'bpmn-js-bpmnlint/dist/assets/css/bpmn-js-bpmnlint.css';
import 'dmn-js/dist/assets/dmn-js-shared.css';
import 'dmn-js/dist/assets/dmn-js-drd.css';
import 'dmn-js/dist/assets/dmn-js-decision-table.css';
import 'dmn-js/dist/assets/dmn-js-decision-table-controls.css';
import 'dmn-js/dist/assets/dmn-js-literal-expression.css';
import 'dmn-js/dist/assets/dmn-js-boxed-expression.css';
import 'dmn-js/dist/assets/dmn-font/css/dmn-embedded.css';
import '@bpmn-io/form-js-viewer/dist/assets/form-js.css';
import '@bpmn-io/form-js-editor/dist/assets/form-js-editor.css';
import '../designer/designer.css';

import { DesignerApp } from '../designer/editor.js';

const root = document.getElementById('designer-app');
if (root) {
  const app = new DesignerApp(root);
  const ready = app.start().then(
    () => {
      root.dataset.ready = 'true';
      return app;
    },
    (error) => {
      app.sayProblem(error);
      root.dataset.ready = 'failed';
      throw error;
    },
  );
  window.paidanDesigner = {
    app,
    modeler: app.modeler,
    get dmnModeler() {
      return app.dmn?.modeler;
    },
    get formEditor() {
      return app.forms?.editor;
    },
    ready,
  };
}
