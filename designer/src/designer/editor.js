// The designer's editor page: one process draft with its BPMN, DMN files and forms.
// Save (PUT with lock_version), Validate (the server's full deploy checks, shown on the
// elements), Deploy (the diff against the deployed version first, then confirm).
import { createBpmnModeler, onLint } from './bpmn.js';
import { DmnPane } from './dmn.js';
import { FormsPane } from './forms.js';
import { createApi, el, splitBilingual, texts } from './dom.js';
import { renameForeignCamundaPrefix } from './prefixes.js';

const TABS = [
  ['bpmn', '流程', 'BPMN'],
  ['dmn', '决策', 'DMN'],
  ['forms', '表单', 'Forms'],
];

export class DesignerApp {
  constructor(root) {
    this.root = root;
    this.key = root.dataset.key;
    this.api = createApi(root.dataset.api || '/api/v1/designer');
    this.text = texts(root.dataset.lang === 'en' ? 'en' : 'zh');
    this.draft = null;
    this.lint = [];
    this.serverProblems = [];
    this.markers = [];
    this.tab = 'bpmn';
    this.lookups = {
      text: this.text,
      groups: [],
      users: [],
      forms: [],
      decisions: [],
      formOptions: () => mergeById(this.forms ? this.forms.formOptions() : [], this.lookups.forms),
      decisionOptions: () => mergeById(this.dmn ? this.dmn.decisionIds() : [], this.lookups.decisions),
    };
    this.build();
  }

  build() {
    const { t, label } = this.text;
    const button = (id, zh, en, onclick, extra = {}) =>
      el('button', { type: 'button', id, onclick, ...extra }, label(zh, en));

    this.status = el('p', { id: 'designer-status', role: 'status', 'aria-live': 'polite' });
    this.problems = el('ul', { id: 'designer-problems', class: 'designer-problems' });
    this.diff = el('section', { id: 'designer-diff', class: 'designer-diff', hidden: true, 'aria-live': 'polite' });
    this.tabButtons = TABS.map(([id, zh, en]) =>
      el(
        'button',
        { type: 'button', role: 'tab', id: `designer-tab-${id}`, 'aria-controls': `designer-pane-${id}`, onclick: () => this.show(id) },
        label(zh, en),
      ),
    );
    this.undoButton = button('designer-undo', '撤销', 'Undo', () => this.commandStack()?.undo(), { disabled: true, title: 'Ctrl+Z' });
    this.redoButton = button('designer-redo', '重做', 'Redo', () => this.commandStack()?.redo(), { disabled: true, title: 'Ctrl+Y' });

    const canvas = el('div', { class: 'designer-canvas', id: 'designer-canvas', tabindex: '0' });
    const properties = el('div', { class: 'designer-properties', id: 'designer-properties' });
    const zoom = el(
      'div',
      { class: 'designer-zoom' },
      el('button', { type: 'button', id: 'designer-zoom-in', title: t('放大', 'Zoom in'), onclick: () => this.zoom(1.2) }, '+'),
      el('button', { type: 'button', id: 'designer-zoom-out', title: t('缩小', 'Zoom out'), onclick: () => this.zoom(1 / 1.2) }, '−'),
      el('button', { type: 'button', id: 'designer-zoom-fit', title: t('适应窗口', 'Fit to view'), onclick: () => this.zoom('fit') }, '⤢'),
    );
    this.panes = {
      bpmn: el('section', { id: 'designer-pane-bpmn', role: 'tabpanel', class: 'designer-pane designer-bpmn' }, canvas, zoom, properties),
      dmn: el('section', { id: 'designer-pane-dmn', role: 'tabpanel', class: 'designer-pane', hidden: true }),
      forms: el('section', { id: 'designer-pane-forms', role: 'tabpanel', class: 'designer-pane', hidden: true }),
    };

    this.root.replaceChildren(
      el(
        'div',
        { class: 'designer-bar' },
        el('div', { role: 'tablist', class: 'designer-tabs' }, ...this.tabButtons),
        el(
          'div',
          { class: 'designer-actions' },
          this.undoButton,
          this.redoButton,
          button('designer-save', '保存草稿', 'Save draft', () => this.save()),
          button('designer-validate', '校验', 'Validate', () => this.validate()),
          button('designer-deploy', '部署', 'Deploy', () => this.prepareDeploy()),
          button('designer-download', '下载', 'Download', () => this.download()),
          el(
            'label',
            { class: 'button designer-import', title: t('用文件替换当前流程图', 'replace the diagram with a file') },
            label('导入', 'Import'),
            el('input', {
              type: 'file',
              id: 'designer-import',
              accept: '.bpmn,.xml',
              hidden: true,
              onchange: (event) => this.importFile(event.target),
            }),
          ),
        ),
      ),
      this.status,
      this.diff,
      this.panes.bpmn,
      this.panes.dmn,
      this.panes.forms,
      el('section', { class: 'designer-problems-box' }, el('h3', {}, label('问题', 'Problems')), this.problems),
    );

    this.modeler = createBpmnModeler({ container: canvas, propertiesParent: properties, lookups: this.lookups });
    onLint(this.modeler, (issues) => {
      this.lint = issues;
      this.renderProblems();
    });
    this.modeler.on('commandStack.changed', () => this.changed());
    // Leaving with changes not saved as the draft asks first (the browser's own dialog).
    window.addEventListener('beforeunload', (event) => {
      if (!this.dirty) return;
      event.preventDefault();
      event.returnValue = '';
    });
  }

  async start() {
    const { t } = this.text;
    this.say(t('加载中…', 'Loading…'));
    const [draft, lookups] = await Promise.all([
      this.api.get(`/processes/${encodeURIComponent(this.key)}/draft`),
      this.api.get(`/lookups?key=${encodeURIComponent(this.key)}`).catch(() => ({})),
    ]);
    Object.assign(this.lookups, {
      groups: lookups.groups || [],
      users: lookups.users || [],
      forms: lookups.forms || [],
      decisions: lookups.decisions || [],
    });
    this.draft = draft;
    this.dmn = new DmnPane({
      root: this.panes.dmn,
      api: this.api,
      text: this.text,
      files: { ...(draft.dmn || {}) },
      onChange: () => this.changed(),
    });
    this.forms = new FormsPane({
      root: this.panes.forms,
      text: this.text,
      forms: { ...(draft.forms || {}) },
      onChange: () => this.changed(),
      onRename: (old, id) => this.renameFormKey(old, id),
    });
    const { warnings } = await this.importBpmn(draft.bpmn_xml);
    // The DMN and form tabs are drawn while visible: dmn-js and form-js measure their boxes.
    for (const [tab, pane] of [
      ['dmn', this.dmn],
      ['forms', this.forms],
    ]) {
      this.show(tab);
      await pane.load();
    }
    this.show('bpmn');
    this.dirty = false;
    this.say(
      warnings.length
        ? t(`已打开，导入警告 ${warnings.length} 条`, `opened with ${warnings.length} import warning(s)`)
        : this.openedText(draft),
    );
  }

  openedText(draft) {
    const { t } = this.text;
    if (draft.updated_at) {
      const when = new Date(draft.updated_at).toLocaleString(this.text.lang === 'en' ? 'en' : 'zh-CN');
      return t(`已打开草稿：${draft.updated_by || '—'} 保存于 ${when}`, `draft opened: saved by ${draft.updated_by || '—'} at ${when}`);
    }
    return draft.base_version
      ? t(`新草稿，从已部署的第 ${draft.base_version} 版开始`, `a new draft, starting from deployed version ${draft.base_version}`)
      : t('新草稿', 'a new draft');
  }

  /** Draw a BPMN document (the draft's, or a file brought in); import warnings are returned. */
  async importBpmn(xml) {
    const result = await this.modeler.importXML(renameForeignCamundaPrefix(xml));
    this.modeler.get('canvas').zoom('fit-viewport', 'auto');
    this.showServerProblems([]);
    return result;
  }

  async importFile(input) {
    const { t } = this.text;
    const file = input.files[0];
    if (!file) return;
    const bytes = await file.arrayBuffer();
    const head = new TextDecoder('latin1').decode(bytes.slice(0, 200));
    const encoding = /encoding=["']([\w-]+)["']/.exec(head)?.[1] || 'utf-8';
    let xml;
    try {
      xml = new TextDecoder(encoding).decode(bytes);
    } catch (error) {
      xml = new TextDecoder('utf-8').decode(bytes);
    }
    input.value = '';
    try {
      const { warnings } = await this.importBpmn(xml);
      this.lastImport = { file: file.name, warnings: warnings.map((warning) => warning.message) };
      this.say(
        warnings.length
          ? t(`已导入 ${file.name}，警告 ${warnings.length} 条`, `${file.name} imported with ${warnings.length} warning(s)`)
          : t(`已导入 ${file.name}`, `${file.name} imported`),
        'ok',
      );
    } catch (error) {
      this.lastImport = { file: file.name, error: error.message };
      this.say(t(`无法导入 ${file.name}：${error.message}`, `cannot import ${file.name}: ${error.message}`), 'error');
    }
    this.root.dataset.imports = String(Number(this.root.dataset.imports || 0) + 1);
  }

  show(tab) {
    this.tab = tab;
    for (const [id, pane] of Object.entries(this.panes)) pane.hidden = id !== tab;
    for (const buttonNode of this.tabButtons) {
      buttonNode.setAttribute('aria-selected', String(buttonNode.id === `designer-tab-${tab}`));
    }
    this.updateUndo();
  }

  commandStack() {
    if (this.tab === 'bpmn') return this.modeler.get('commandStack');
    if (this.tab === 'dmn') return this.dmn?.commandStack();
    return this.forms?.commandStack();
  }

  changed() {
    this.dirty = true;
    this.updateUndo();
  }

  updateUndo() {
    const stack = this.commandStack();
    this.undoButton.disabled = !stack?.canUndo();
    this.redoButton.disabled = !stack?.canRedo();
  }

  zoom(step) {
    const canvas = this.modeler.get('canvas');
    if (step === 'fit') canvas.zoom('fit-viewport', 'auto');
    else canvas.zoom(canvas.zoom() * step);
  }

  say(text, kind = 'info') {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  sayProblem(error) {
    const problem = error.problem || {};
    this.say(this.text.message(problem.detail_zh, problem.detail_en) || error.message, 'error');
  }

  /** The whole draft as the server takes it. */
  async collect() {
    const { xml } = await this.modeler.saveXML({ format: true });
    await this.dmn.flush();
    this.forms.flush();
    return { bpmn_xml: xml, dmn: { ...this.dmn.files }, forms: { ...this.forms.forms } };
  }

  async save() {
    const { t } = this.text;
    const body = { ...(await this.collect()), lock_version: this.draft.lock_version };
    try {
      this.draft = await this.api.put(`/processes/${encodeURIComponent(this.key)}/draft`, body);
      this.dirty = false;
      this.say(t(`草稿已保存（第 ${this.draft.lock_version} 次保存）`, `draft saved (save ${this.draft.lock_version})`), 'ok');
      return true;
    } catch (error) {
      this.sayProblem(error);
      return false;
    }
  }

  async validate() {
    const { t } = this.text;
    this.say(t('校验中…', 'Validating…'));
    try {
      const answer = await this.api.post(`/processes/${encodeURIComponent(this.key)}/validate`, await this.collect());
      this.showServerProblems(answer.problems || []);
      const errors = this.serverProblems.filter((problem) => problem.severity === 'error').length;
      this.say(
        answer.ok
          ? t('校验通过，可以部署', 'valid: ready to deploy')
          : t(`校验发现 ${errors} 个错误`, `validation found ${errors} error(s)`),
        answer.ok ? 'ok' : 'error',
      );
      return answer.ok;
    } catch (error) {
      this.sayProblem(error);
      return false;
    }
  }

  showServerProblems(problems) {
    this.serverProblems = problems;
    const canvas = this.modeler.get('canvas');
    const registry = this.modeler.get('elementRegistry');
    for (const [id, marker] of this.markers) if (registry.get(id)) canvas.removeMarker(id, marker);
    this.markers = [];
    for (const problem of problems) {
      const id = problem.element_id;
      if (id && registry.get(id)) {
        const marker = problem.severity === 'error' ? 'designer-problem-error' : 'designer-problem-warning';
        canvas.addMarker(id, marker);
        this.markers.push([id, marker]);
      }
    }
    this.renderProblems();
  }

  renderProblems() {
    const { message, t } = this.text;
    const registry = this.modeler.get('elementRegistry');
    const items = [];
    const item = (source, problem, text) => {
      const id = problem.elementId ?? problem.element_id ?? null;
      const element = id ? registry.get(id) : null;
      const name = element?.businessObject?.name;
      return el(
        'li',
        {
          class: `designer-problem ${problem.severity}`,
          'data-source': source,
          'data-severity': problem.severity,
          'data-element-id': id || undefined,
          'data-code': problem.code || problem.rule || undefined,
          tabindex: id ? '0' : undefined,
          onclick: id ? () => this.select(id) : undefined,
          onkeydown: id ? (event) => event.key === 'Enter' && this.select(id) : undefined,
        },
        el('span', { class: 'designer-severity' }, problem.severity === 'error' ? t('错误', 'error') : t('警告', 'warning')),
        ' ',
        id ? el('code', {}, name ? `${name} (${id})` : id) : problem.file ? el('code', {}, problem.file) : null,
        ' ',
        text,
      );
    };
    for (const problem of this.serverProblems) {
      items.push(item('server', problem, message(problem.message_zh, problem.message_en)));
    }
    for (const issue of this.lint) {
      const pair = splitBilingual(issue.message);
      const translate = this.modeler.get('translate');
      const text = pair ? message(pair.zh, pair.en) : this.text.lang === 'en' ? issue.message : message(translate(issue.message), issue.message);
      items.push(item('lint', issue, text));
    }
    if (!items.length) items.push(el('li', { class: 'designer-problem none' }, t('没有问题', 'No problems')));
    this.problems.replaceChildren(...items);
  }

  select(id) {
    if (this.tab !== 'bpmn') this.show('bpmn');
    const element = this.modeler.get('elementRegistry').get(id);
    if (!element) return;
    this.modeler.get('selection').select(element);
    this.modeler.get('canvas').scrollToElement(element);
  }

  async prepareDeploy() {
    const { t, label } = this.text;
    if (!(await this.save())) return;
    try {
      const diff = await this.api.get(`/processes/${encodeURIComponent(this.key)}/diff`);
      const list = (zh, en, kind, rows) =>
        el(
          'div',
          { class: `designer-diff-${kind}` },
          el('h4', {}, label(zh, en), ` (${rows.length})`),
          el(
            'ul',
            {},
            ...rows.map((row) =>
              el(
                'li',
                { 'data-change': kind, 'data-element-id': row.id },
                el('code', {}, row.id),
                ' ',
                row.name || '',
                ` · ${row.type || ''}`,
                row.fields?.length ? ` · ${row.fields.join(', ')}` : '',
              ),
            ),
          ),
        );
      const nothing = !diff.added.length && !diff.removed.length && !diff.changed.length;
      const heading = diff.base_version
        ? t(`与已部署的第 ${diff.base_version} 版相比`, `Against deployed version ${diff.base_version}`)
        : t('新流程（尚未部署）', 'A new process (not deployed yet)');
      this.diff.replaceChildren(
        el('h3', {}, heading),
        list('新增', 'Added', 'added', diff.added),
        list('删除', 'Removed', 'removed', diff.removed),
        list('修改', 'Changed', 'changed', diff.changed),
        el('p', { hidden: !nothing }, t('流程元素没有变化', 'No flow element changed')),
        el(
          'p',
          {},
          el('button', { type: 'button', id: 'designer-deploy-confirm', onclick: () => this.deploy() }, label('确认部署', 'Confirm deploy')),
          ' ',
          el('button', { type: 'button', id: 'designer-deploy-cancel', onclick: () => (this.diff.hidden = true) }, label('取消', 'Cancel')),
        ),
      );
      this.diff.hidden = false;
      this.say(t('请核对改动，然后确认部署', 'check the changes, then confirm the deploy'));
    } catch (error) {
      this.sayProblem(error);
    }
  }

  async deploy() {
    const { t } = this.text;
    const confirmButton = this.diff.querySelector('#designer-deploy-confirm');
    if (confirmButton) confirmButton.disabled = true;
    try {
      const answer = await this.api.post(`/processes/${encodeURIComponent(this.key)}/deploy`, {
        lock_version: this.draft.lock_version,
      });
      this.diff.hidden = true;
      this.showServerProblems([]);
      this.draft = await this.api.get(`/processes/${encodeURIComponent(this.key)}/draft`);
      this.say(
        answer.new_version === false
          ? t(`内容与第 ${answer.version} 版相同，没有部署新版本`, `the same as version ${answer.version}: no new version deployed`)
          : t(`已部署为第 ${answer.version} 版`, `deployed as version ${answer.version}`),
        'ok',
      );
      this.root.dataset.deployedVersion = String(answer.version);
    } catch (error) {
      if (error.problem?.problems) {
        this.diff.hidden = true;
        this.showServerProblems(error.problem.problems);
      }
      this.sayProblem(error);
    } finally {
      if (confirmButton) confirmButton.disabled = false;
    }
  }

  /** A form renamed in the Forms tab: its form keys follow (one undoable command each). */
  renameFormKey(old, id) {
    const modeling = this.modeler.get('modeling');
    let moved = 0;
    for (const element of this.modeler.get('elementRegistry').getAll()) {
      const bo = element.businessObject;
      if (element.type !== 'label' && bo?.get && bo.get('camunda:formKey') === old) {
        modeling.updateProperties(element, { 'camunda:formKey': id });
        moved += 1;
      }
    }
    return moved;
  }

  async download() {
    const { xml } = await this.modeler.saveXML({ format: true });
    const link = el('a', {
      href: URL.createObjectURL(new Blob([xml], { type: 'application/xml' })),
      download: `${this.key}.bpmn`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }
}

function mergeById(first, second) {
  const seen = new Set();
  const merged = [];
  for (const entry of [...first, ...second]) {
    if (!entry?.id || seen.has(entry.id)) continue;
    seen.add(entry.id);
    merged.push(entry);
  }
  return merged;
}
