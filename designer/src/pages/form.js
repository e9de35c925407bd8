// The form-js island: renders a form schema (the same one the server validates), and sends
// the data, plus any files and extra fields of the island, to the page's endpoint.
//
// <div data-form-island data-submit-url="/…" data-locale="zh">
//   <script type="application/json" data-form-schema>…</script>
//   <script type="application/json" data-form-data>…</script>
//   <div data-form-container></div>
//   <input type="file" name="files" data-extra> <input type="hidden" name="lat" data-extra>
//   <div data-form-errors role="alert"></div>
//   <button data-form-submit>…</button>
// </div>
// The server answers {"redirect": url} or problem+json with `detail` and `errors`.
import { Form } from '@bpmn-io/form-js-viewer';
import '@bpmn-io/form-js-viewer/dist/assets/form-js.css';

const readJson = (root, selector, fallback) => {
  const node = root.querySelector(selector);
  return node ? JSON.parse(node.textContent) : fallback;
};

function showErrors(root, form, problem) {
  const box = root.querySelector('[data-form-errors]');
  const lines = [problem.detail || problem.title || String(problem)];
  const fieldErrors = {};
  for (const [key, message] of Object.entries(problem.errors || {})) {
    const text = Array.isArray(message) ? message.join('; ') : String(message);
    lines.push(`${key}: ${text}`);
    fieldErrors[key] = [text];
  }
  box.replaceChildren(...lines.map((line) => Object.assign(document.createElement('p'), { textContent: line })));
  box.hidden = false;
  // form-js shows errors keyed by component id; our schemas give every field id == key.
  if (form && Object.keys(fieldErrors).length) form._setState({ errors: fieldErrors });
}

async function mount(root) {
  const form = new Form({ container: root.querySelector('[data-form-container]') });
  await form.importSchema(readJson(root, '[data-form-schema]', {}), readJson(root, '[data-form-data]', {}));
  const button = root.querySelector('[data-form-submit]');
  root.paidanForm = form;

  button.addEventListener('click', async (event) => {
    event.preventDefault();
    const { data, errors } = form.submit();
    if (Object.keys(errors).length) return;
    const body = new FormData();
    body.append('data', JSON.stringify(data));
    root.querySelectorAll('[data-extra]').forEach((input) => {
      if (input.type === 'file') {
        for (const file of input.files) body.append(input.name, file);
      } else if (input.type !== 'checkbox' || input.checked) {
        body.append(input.name, input.value);
      }
    });
    (root.pendingFiles || []).forEach(([name, blob, filename]) => body.append(name, blob, filename));
    button.disabled = true;
    try {
      const response = await fetch(root.dataset.submitUrl, {
        method: 'POST',
        body,
        headers: {
          'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content,
          Accept: 'application/json',
        },
      });
      const answer = await response.json().catch(() => ({ detail: response.statusText }));
      if (response.ok && answer.redirect) {
        window.location.assign(answer.redirect);
        return;
      }
      showErrors(root, form, answer);
    } catch (error) {
      showErrors(root, form, { detail: String(error) });
    } finally {
      button.disabled = false;
    }
  });
  root.dataset.ready = 'true';
}

document.querySelectorAll('[data-form-island]').forEach((root) => {
  mount(root).catch((error) => showErrors(root, null, { detail: String(error) }));
});
