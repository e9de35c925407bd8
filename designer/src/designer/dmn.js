// The DMN tab: dmn-js Modeler for the draft's DMN files (a picker when there are several), and
// the "try it" panel that asks the server to evaluate a decision table with the engine's own
// evaluator on values typed here.
import DmnModeler from 'dmn-js/lib/Modeler';
import { el } from './dom.js';

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else', 'True', 'False', 'None', 'true', 'false', 'null']);

/** The variables an input expression reads: a plain name, or the names inside an expression. */
export function variablesOf(expression) {
  const text = (expression || '').trim();
  const found = [];
  const pattern = /("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(\.?)\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?/g;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    const [, quoted, dot, name, call] = match;
    if (quoted || dot || call || KEYWORDS.has(name) || found.includes(name)) continue;
    found.push(name);
  }
  return found;
}

/** A typed value as the engine would get it from a form: numbers and booleans by type. */
function convert(raw, typeRef) {
  const text = raw.trim();
  const type = (typeRef || '').toLowerCase();
  if (['integer', 'long', 'double', 'number', 'decimal', 'float', 'int'].includes(type) && text !== '') {
    const number = Number(text);
    return Number.isNaN(number) ? text : number;
  }
  if (type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return raw;
}

export class DmnPane {
  constructor({ root, api, text, files, onChange }) {
    this.api = api;
    this.text = text;
    this.files = files; // filename -> xml (the draft's, kept current by this pane)
    this.current = null;
    const { t, label } = text;

    this.picker = el('select', { id: 'designer-dmn-file', 'aria-label': t('决策文件', 'Decision file') });
    this.picker.addEventListener('change', () => this.open(this.picker.value));
    this.canvas = el('div', { class: 'designer-dmn-canvas' });
    this.decision = el('select', { id: 'designer-try-decision', 'aria-label': t('决策', 'Decision') });
    this.decision.addEventListener('change', () => this.renderInputs());
    this.inputs = el('div', { class: 'designer-try-inputs' });
    this.result = el('div', { id: 'designer-try-result', role: 'status' });
    this.tryButton = el('button', { type: 'button', id: 'designer-try-run', onclick: () => this.run() }, label('试算', 'Try it'));

    root.append(
      el('div', { class: 'designer-toolbar' }, el('label', {}, label('决策文件', 'Decision file'), ' ', this.picker)),
      el(
        'div',
        { class: 'designer-dmn-layout' },
        this.canvas,
        el(
          'aside',
          { class: 'designer-try', id: 'designer-try', 'aria-label': t('试算', 'Try it') },
          el('h3', {}, label('试算', 'Try it')),
          el('p', { class: 'muted' }, label('用引擎的求值器在服务器上计算', 'evaluated on the server by the engine')),
          el('label', {}, label('决策', 'Decision'), ' ', this.decision),
          this.inputs,
          this.tryButton,
          this.result,
        ),
      ),
    );

    this.modeler = new DmnModeler({ container: this.canvas, common: { keyboard: { bind: false } } });
    this.modeler.on('views.changed', () => this.fillDecisions());
    this.modeler.on('elements.changed', () => onChange());
  }

  async load() {
    this.picker.replaceChildren(...Object.keys(this.files).map((name) => el('option', { value: name }, name)));
    this.picker.closest('label').hidden = Object.keys(this.files).length < 2;
    const first = Object.keys(this.files)[0];
    if (first) await this.open(first);
  }

  async open(name) {
    await this.flush();
    this.current = name;
    this.picker.value = name;
    const { warnings } = await this.modeler.importXML(this.files[name]);
    const table = this.modeler.getViews().find((view) => view.type === 'decisionTable');
    if (table) await this.modeler.open(table);
    this.fillDecisions();
    return warnings;
  }

  /** The open file's XML back into the draft. */
  async flush() {
    if (!this.current || !this.modeler.getDefinitions()) return;
    const { xml } = await this.modeler.saveXML({ format: true });
    this.files[this.current] = xml;
  }

  decisionTables() {
    const definitions = this.modeler.getDefinitions();
    return (definitions?.drgElement || []).filter(
      (element) => element.$type === 'dmn:Decision' && element.decisionLogic?.$type === 'dmn:DecisionTable',
    );
  }

  /** Decision ids of every file of the draft (for the properties panel's picker). */
  decisionIds() {
    const found = [];
    for (const xml of Object.values(this.files)) {
      for (const match of xml.matchAll(/<(?:\w+:)?decision\b[^>]*>/g)) {
        const id = /\bid="([^"]+)"/.exec(match[0]);
        const name = /\bname="([^"]*)"/.exec(match[0]);
        if (id) found.push({ id: id[1], name: name ? name[1] : '' });
      }
    }
    return found;
  }

  fillDecisions() {
    const tables = this.decisionTables();
    const chosen = this.modeler.getActiveView()?.element?.id;
    const previous = this.decision.value;
    this.decision.replaceChildren(
      ...tables.map((table) => el('option', { value: table.id }, table.name ? `${table.name} (${table.id})` : table.id)),
    );
    this.decision.value = tables.some((table) => table.id === chosen) ? chosen : previous || tables[0]?.id || '';
    this.renderInputs();
  }

  renderInputs() {
    const table = this.decisionTables().find((decision) => decision.id === this.decision.value);
    const fields = [];
    const seen = new Set();
    for (const input of table?.decisionLogic.input || []) {
      const expression = input.inputExpression?.text || '';
      for (const name of variablesOf(expression)) {
        if (seen.has(name)) continue;
        seen.add(name);
        const existing = this.inputs.querySelector(`[data-input="${name}"]`);
        const field = el('input', {
          type: 'text',
          id: `designer-try-input-${name}`,
          'data-input': name,
          'data-type': input.inputExpression?.typeRef || '',
          value: existing ? existing.value : '',
        });
        fields.push(
          el(
            'label',
            { class: 'designer-try-field' },
            el('span', {}, input.label ? `${input.label} (${name})` : name),
            field,
          ),
        );
      }
    }
    this.inputs.replaceChildren(...fields);
  }

  async run() {
    await this.flush();
    const inputs = {};
    for (const field of this.inputs.querySelectorAll('[data-input]')) {
      inputs[field.dataset.input] = convert(field.value, field.dataset.type);
    }
    const { t, message } = this.text;
    this.result.replaceChildren(el('p', { class: 'muted' }, t('计算中…', 'Evaluating…')));
    this.clearMatches();
    try {
      const answer = await this.api.post('/decisions/try', {
        dmn_xml: this.files[this.current],
        decision_id: this.decision.value,
        inputs,
      });
      this.showResult(answer);
    } catch (error) {
      const problem = error.problem || {};
      this.result.replaceChildren(
        el('p', { class: 'designer-error', role: 'alert' }, message(problem.detail_zh, problem.detail_en) || error.message),
      );
    }
  }

  showResult(answer) {
    const { t } = this.text;
    const outputs = Array.isArray(answer.outputs) ? answer.outputs : answer.outputs ? [answer.outputs] : [];
    const columns = [...new Set(outputs.flatMap((row) => (row && typeof row === 'object' ? Object.keys(row) : [])))];
    const table = el(
      'table',
      { class: 'designer-try-outputs' },
      el('thead', {}, el('tr', {}, ...columns.map((name) => el('th', {}, name)))),
      el(
        'tbody',
        {},
        ...outputs.map((row) =>
          el(
            'tr',
            { 'data-output-row': '' },
            ...columns.map((name) => el('td', { 'data-output': name }, JSON.stringify(row[name]))),
          ),
        ),
      ),
    );
    const matched = answer.matched_rules || [];
    this.result.replaceChildren(
      outputs.length ? table : el('p', { 'data-no-match': '' }, t('没有规则匹配', 'No rule matched')),
      el(
        'p',
        { class: 'designer-try-rules' },
        t('命中规则：', 'Matched rules: '),
        ...matched.map((rule) => el('code', { 'data-rule': String(rule) }, String(rule), ' ')),
      ),
    );
    this.markMatches(matched);
  }

  markMatches(matched) {
    const rules = this.decisionTables().find((decision) => decision.id === this.decision.value)?.decisionLogic.rule || [];
    for (const ref of matched) {
      const rule = typeof ref === 'number' ? rules[ref] : rules.find((candidate) => candidate.id === String(ref));
      if (!rule) continue;
      this.canvas.querySelectorAll(`[data-row-id="${CSS.escape(rule.id)}"]`).forEach((cell) => cell.classList.add('designer-matched'));
    }
  }

  clearMatches() {
    this.canvas.querySelectorAll('.designer-matched').forEach((cell) => cell.classList.remove('designer-matched'));
  }

  commandStack() {
    const viewer = this.modeler.getActiveViewer();
    try {
      return viewer?.get('commandStack');
    } catch (error) {
      return null;
    }
  }
}
