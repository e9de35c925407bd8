// Small DOM helpers for the designer islands: elements, bilingual labels, the API.

/** el('button', {id: 'x', onclick}, 'text', child) — attributes starting with "on" are listeners. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/**
 * Texts in the page's language: Chinese first with the English beside it on a Chinese page,
 * English alone on an English one.
 */
export function texts(lang) {
  const english = lang === 'en';
  return {
    lang,
    /** plain text (buttons' titles, options, status lines) */
    t: (zh, en) => (english ? en : `${zh} ${en}`),
    /** one language only (tooltips inside the diagram, where space is short) */
    one: (zh, en) => (english ? en : zh),
    /** an element: <span>中文</span> <span class="en">English</span> */
    label: (zh, en) =>
      english
        ? el('span', { lang: 'en' }, en)
        : el('span', {}, el('span', { lang: 'zh' }, zh), ' ', el('span', { class: 'designer-en', lang: 'en' }, en)),
    /** a problem's message from its zh/en pair */
    message: (zh, en) => (english ? en || zh : zh && en ? `${zh} — ${en}` : zh || en),
  };
}

/** A bilingual message "中文 / English" (our lint rules) shown in the page's language. */
export function splitBilingual(message) {
  const at = message.indexOf(' / ');
  if (at < 0 || !/[\u4e00-\u9fff]/.test(message.slice(0, at))) return null;
  return { zh: message.slice(0, at), en: message.slice(at + 3) };
}

export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

/** fetch() JSON from our API with the session cookie and the CSRF header; problems throw. */
export function createApi(base) {
  async function call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get('Content-Type') || '';
    const data = type.includes('json') ? await response.json() : await response.text();
    if (!response.ok) throw new ProblemError(response.status, typeof data === 'object' ? data : { detail: data });
    return data;
  }
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    put: (path, body) => call('PUT', path, body),
    delete: (path) => call('DELETE', path),
  };
}
