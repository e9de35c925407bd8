// The "派单 Paidan" group of the properties panel: pickers for what the engine reads, filled
// from GET /api/v1/designer/lookups and from the draft itself (its forms and decisions).
// The Camunda groups stay as they are for everything else (expressions in candidate groups,
// due dates, conditions, timers, extension properties); a picker shows a value it does not
// know (an expression, several groups) as it is, so choosing never loses what was typed there.
import { h } from '@bpmn-io/properties-panel/preact';
import { SelectEntry, isSelectEntryEdited } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

const LOW_PRIORITY = 400;

function isProcessStart(element) {
  const bo = getBusinessObject(element);
  return is(element, 'bpmn:StartEvent') && !is(bo.$parent, 'bpmn:SubProcess');
}

/** Options of a picker: none, the known values, and the current value when it is unknown. */
function optionsWith(current, known, none) {
  const options = [{ value: '', label: none }, ...known];
  if (current && !known.some((option) => option.value === current)) {
    options.push({ value: current, label: current });
  }
  return options;
}

function Picker(props) {
  const { element, id, label, attribute, known } = props;
  const modeling = useService('modeling');
  const lookups = useService('paidanLookups');
  const bo = getBusinessObject(element);
  return h(SelectEntry, {
    element,
    id,
    label,
    getValue: () => bo.get(attribute) || '',
    setValue: (value) => modeling.updateProperties(element, { [attribute]: value || undefined }),
    getOptions: () => optionsWith(bo.get(attribute) || '', known(lookups), `— ${lookups.text.t('未选', 'none')} —`),
  });
}

const PICKERS = {
  candidateGroups: {
    applies: (element) => is(element, 'bpmn:UserTask'),
    label: ['候选组', 'Candidate group'],
    known: (lookups) => lookups.groups.map((group) => ({ value: group.code, label: `${group.name} (${group.code})` })),
  },
  candidateUsers: {
    applies: (element) => is(element, 'bpmn:UserTask'),
    label: ['候选人', 'Candidate user'],
    known: (lookups) =>
      lookups.users.map((user) => ({ value: user.username, label: `${user.display_name} (${user.username})` })),
  },
  assignee: {
    applies: (element) => is(element, 'bpmn:UserTask'),
    label: ['处理人', 'Assignee'],
    known: (lookups) =>
      lookups.users.map((user) => ({ value: user.username, label: `${user.display_name} (${user.username})` })),
  },
  formKey: {
    applies: (element) => is(element, 'bpmn:UserTask') || isProcessStart(element),
    label: ['表单', 'Form key'],
    known: (lookups) => lookups.formOptions().map((form) => ({ value: form.id, label: form.title ? `${form.title} (${form.id})` : form.id })),
  },
  decisionRef: {
    applies: (element) => is(element, 'bpmn:BusinessRuleTask'),
    label: ['决策表', 'Decision'],
    known: (lookups) =>
      lookups.decisionOptions().map((decision) => ({
        value: decision.id,
        label: decision.name ? `${decision.name} (${decision.id})` : decision.id,
      })),
  },
};

export default function PaidanPropertiesProvider(propertiesPanel, paidanLookups) {
  this.getGroups = (element) => (groups) => {
    const entries = Object.entries(PICKERS)
      .filter(([, picker]) => picker.applies(element))
      .map(([name, picker]) => ({
        id: `paidan-${name}`,
        component: Picker,
        label: paidanLookups.text.t(...picker.label),
        attribute: `camunda:${name}`,
        known: picker.known,
        isEdited: isSelectEntryEdited,
      }));
    if (!entries.length) return groups;
    const group = { id: 'paidan', label: paidanLookups.text.t('派单', 'Paidan'), entries, shouldOpen: true };
    const general = groups.findIndex((candidate) => candidate.id === 'general');
    groups.splice(general + 1, 0, group);
    return groups;
  };
  propertiesPanel.registerProvider(LOW_PRIORITY, this);
}

PaidanPropertiesProvider.$inject = ['propertiesPanel', 'paidanLookups'];
