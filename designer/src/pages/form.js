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

// form-js writes a few words itself, in English ("Select", "Search"): the page gives their
// translation in #form-texts, and they are replaced wherever form-js renders them.
// Texts with a number in them ("…minimum length of 3.") are given as "…of {n}.".
const widgetTexts = JSON.parse(document.getElementById('form-texts')?.textContent || '{}');
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const widgetPatterns = Object.entries(widgetTexts)
  .filter(([english]) => english.includes('{n}'))
  .map(([english, translated]) => [
    new RegExp(`^${escapeRegExp(english).replace(escapeRegExp('{n}'), '(-?[\\d.]+)')}$`),
    translated,
  ]);

function translateText(text) {
  const trimmed = text.trim();
  if (widgetTexts[trimmed] && !trimmed.includes('{n}')) return widgetTexts[trimmed];
  for (const [pattern, translated] of widgetPatterns) {
    const match = trimmed.match(pattern);
    if (match) return translated.replace('{n}', match[1]);
  }
  return null;
}

function translateWidgets(container) {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = translateText(node.nodeValue);
    if (text) node.nodeValue = text;
  }
  for (const attribute of ['placeholder', 'title', 'aria-label']) {
    container.querySelectorAll(`[${attribute}]`).forEach((element) => {
      const text = widgetTexts[element.getAttribute(attribute)];
      if (text) element.setAttribute(attribute, text);
    });
  }
}

async function mount(root) {
  const container = root.querySelector('[data-form-container]');
  const form = new Form({ container });
  if (Object.keys(widgetTexts).length) {
    new MutationObserver(() => translateWidgets(container)).observe(container, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  }
  await form.importSchema(readJson(root, '[data-form-schema]', {}), readJson(root, '[data-form-data]', {}));
  const button = root.querySelector('[data-form-submit]');
  root.paidanForm = form;
  if (!button) {
    // A read-only view (someone else's task): nothing to send.
    root.dataset.ready = 'true';
    return;
  }

  button.addEventListener('click', async (event) => {
    event.preventDefault();
    // form-js debounces typing: leave the field first so its last keystrokes count.
    document.activeElement?.blur();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { data, errors } = form.submit();
    if (Object.keys(errors).length) {
      showErrors(root, null, { detail: widgetTexts['Check the fields marked in red.'] || 'Check the fields marked in red.' });
      return;
    }
    root.querySelector('[data-form-errors]').hidden = true;
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
      const answer = await response
        .json()
        .catch(() => ({ detail: `${widgetTexts['The server gave no usable answer; try again.']} (${response.status})` }));
      if (response.ok && answer.redirect) {
        window.location.assign(answer.redirect);
        return;
      }
      showErrors(root, form, answer);
    } catch (error) {
      showErrors(root, form, { detail: `${widgetTexts['The server could not be reached; check the connection and try again.']} (${error})` });
    } finally {
      button.disabled = false;
    }
  });
  root.dataset.ready = 'true';
}

document.querySelectorAll('[data-form-island]').forEach((root) => {
  mount(root).catch((error) => showErrors(root, null, { detail: String(error) }));
});
