// The BPMN modeler of the designer: bpmn-js with the Camunda 7 properties panel, our pickers,
// bpmnlint (the recommended rules plus the engine's own, packed from designer/.bpmnlintrc),
// the minimap and Chinese tooltips on a Chinese page.
import Modeler from 'bpmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
} from 'bpmn-js-properties-panel';
import CamundaBehaviorsModule from 'camunda-bpmn-js-behaviors/lib/camunda-platform';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';
import lintModule from 'bpmn-js-bpmnlint';
import minimapModule from 'diagram-js-minimap';
import bpmnlintConfig from 'virtual:bpmnlint-config';

import keepUndrawnDiModule from './keep-di.js';
import PaidanPropertiesProvider from './properties.js';
import { splitBilingual } from './dom.js';
import { PANEL_ZH, ZH } from './zh.js';

/** bpmn-js's translate service: Chinese for a Chinese page, our bilingual lint texts split. */
function translateModule(lang) {
  function translate(template, replacements = {}) {
    const pair = splitBilingual(template);
    let text = template;
    if (pair) text = lang === 'en' ? pair.en : pair.zh;
    else if (lang !== 'en' && PANEL_ZH[template]) text = `${PANEL_ZH[template]} ${template}`;
    else if (lang !== 'en' && ZH[template]) text = ZH[template];
    return text.replace(/{([^}]+)}/g, (_, key) => replacements[key] ?? `{${key}}`);
  }
  return { translate: ['value', translate] };
}

export function createBpmnModeler({ container, propertiesParent, lookups }) {
  return new Modeler({
    container,
    propertiesPanel: { parent: propertiesParent },
    linting: { bpmnlint: bpmnlintConfig, active: true },
    minimap: { open: true },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      CamundaPlatformPropertiesProviderModule,
      CamundaBehaviorsModule,
      lintModule,
      minimapModule,
      keepUndrawnDiModule,
      translateModule(lookups.text.lang),
      {
        __init__: ['paidanPropertiesProvider'],
        paidanLookups: ['value', lookups],
        paidanPropertiesProvider: ['type', PaidanPropertiesProvider],
      },
    ],
    moddleExtensions: { camunda: camundaModdle },
  });
}

/** Lint issues as {elementId: [{message, category, rule}]} whenever bpmnlint has run. */
export function onLint(modeler, callback) {
  modeler.get('eventBus').on('linting.completed', ({ issues }) => {
    const flat = [];
    for (const [id, list] of Object.entries(issues)) {
      for (const issue of list) {
        flat.push({
          elementId: issue.actualElementId || id,
          message: issue.message,
          severity: issue.category === 'error' ? 'error' : 'warning',
          rule: issue.rule,
        });
      }
    }
    callback(flat);
  });
}
