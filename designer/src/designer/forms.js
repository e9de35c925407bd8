// The Forms tab: the form-js editor for each form of the draft (add one, rename its id), and
// a preview that renders the schema with the form-js viewer and sample data typed as JSON.
import { FormEditor } from '@bpmn-io/form-js-editor';
import { Form } from '@bpmn-io/form-js-viewer';
import { el } from './dom.js';

const FORM_ID = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export class FormsPane {
  constructor({ root, text, forms, onChange, onRename }) {
    this.text = text;
    this.forms = forms; // form id -> schema (the draft's, kept current by this pane)
    this.current = null;
    this.onChange = onChange;
    this.onRename = onRename;
    const { t, label } = text;

    this.picker = el('select', { id: 'designer-form-picker', 'aria-label': t('表单', 'Form') });
    this.picker.addEventListener('change', () => this.open(this.picker.value));
    this.newId = el('input', { id: 'designer-form-new-id', placeholder: 'form_id', size: 16 });
    this.renameId = el('input', { id: 'designer-form-rename-id', placeholder: 'form_id', size: 16 });
    this.message = el('p', { class: 'designer-form-message', role: 'status' });
    this.sample = el('textarea', { id: 'designer-form-sample', rows: 4, spellcheck: 'false' }, '{}');
    this.sample.addEventListener('input', () => this.preview());
    this.editorNode = el('div', { class: 'designer-form-editor' });
    this.previewNode = el('div', { class: 'designer-form-preview', id: 'designer-form-preview' });

    root.append(
      el(
        'div',
        { class: 'designer-toolbar' },
        el('label', {}, label('表单', 'Form'), ' ', this.picker),
        el(
          'span',
          { class: 'designer-inline' },
          this.newId,
          el('button', { type: 'button', id: 'designer-form-add', onclick: () => this.add() }, label('添加表单', 'Add form')),
        ),
        el(
          'span',
          { class: 'designer-inline' },
          this.renameId,
          el('button', { type: 'button', id: 'designer-form-rename', onclick: () => this.rename() }, label('改 id', 'Rename id')),
        ),
        this.message,
      ),
      el(
        'div',
        { class: 'designer-form-layout' },
        this.editorNode,
        el(
          'aside',
          { class: 'designer-form-side' },
          el('h3', {}, label('预览', 'Preview')),
          el('label', { for: 'designer-form-sample' }, label('示例数据（JSON）', 'Sample data (JSON)')),
          this.sample,
          this.previewNode,
        ),
      ),
    );
    this.editor = new FormEditor({ container: this.editorNode });
    this.viewer = new Form({ container: this.previewNode });
    this.editor.on('changed', () => {
      this.flush();
      this.onChange();
      this.schedulePreview();
    });
  }

  async load() {
    this.fillPicker();
    const first = Object.keys(this.forms)[0];
    if (first) await this.open(first);
  }

  fillPicker() {
    this.picker.replaceChildren(
      ...Object.entries(this.forms).map(([id, schema]) => el('option', { value: id }, schemaTitle(schema) ? `${schemaTitle(schema)} (${id})` : id)),
    );
    if (this.current) this.picker.value = this.current;
  }

  async open(id) {
    this.flush();
    this.current = id;
    this.picker.value = id;
    this.renameId.value = id;
    await this.editor.importSchema(this.forms[id]);
    await this.preview();
  }

  /** The open form's schema back into the draft. */
  flush() {
    if (this.current && this.forms[this.current]) this.forms[this.current] = this.editor.saveSchema();
  }

  say(zh, en, error = false) {
    this.message.textContent = this.text.t(zh, en);
    this.message.classList.toggle('designer-error', error);
  }

  async add() {
    const id = this.newId.value.trim();
    if (!FORM_ID.test(id)) return this.say('表单 id 须以字母开头，只含字母、数字、_ . -', 'a form id starts with a letter and holds letters, digits, _ . - only', true);
    if (this.forms[id]) return this.say(`表单 ${id} 已存在`, `form ${id} exists already`, true);
    this.flush();
    this.forms[id] = { type: 'default', id, schemaVersion: 16, components: [] };
    this.newId.value = '';
    this.fillPicker();
    await this.open(id);
    this.onChange();
    this.say(`已添加表单 ${id}`, `form ${id} added`);
  }

  async rename() {
    const id = this.renameId.value.trim();
    const old = this.current;
    if (!old || id === old) return;
    if (!FORM_ID.test(id)) return this.say('表单 id 须以字母开头，只含字母、数字、_ . -', 'a form id starts with a letter and holds letters, digits, _ . - only', true);
    if (this.forms[id]) return this.say(`表单 ${id} 已存在`, `form ${id} exists already`, true);
    this.flush();
    const schema = { ...this.forms[old], id };
    const renamed = {};
    for (const [key, value] of Object.entries(this.forms)) renamed[key === old ? id : key] = key === old ? schema : value;
    for (const key of Object.keys(this.forms)) delete this.forms[key];
    Object.assign(this.forms, renamed);
    this.current = null;
    this.fillPicker();
    await this.open(id);
    const moved = this.onRename(old, id);
    this.onChange();
    this.say(`已改为 ${id}，更新了 ${moved} 处表单引用`, `renamed to ${id}; ${moved} form key(s) updated`);
  }

  schedulePreview() {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.preview(), 300);
  }

  async preview() {
    let data = {};
    try {
      data = JSON.parse(this.sample.value || '{}');
      this.sample.removeAttribute('aria-invalid');
    } catch (error) {
      this.sample.setAttribute('aria-invalid', 'true');
    }
    if (!this.current) return;
    await this.viewer.importSchema(this.editor.saveSchema(), data);
  }

  commandStack() {
    return this.editor.get('commandStack');
  }

  /** Form ids and titles of the draft (for the properties panel's picker). */
  formOptions() {
    this.flush();
    return Object.entries(this.forms).map(([id, schema]) => ({ id, title: schemaTitle(schema) }));
  }
}

function schemaTitle(schema) {
  return schema.title || schema.name || '';
}
