// Every page: htmx, the CSRF header on every htmx request, refused htmx requests shown where
// the page asks, the personal menu, and file inputs in the page's language.
import htmx from 'htmx.org';

window.htmx = htmx;
// Pages never ask htmx to evaluate code from attributes (hx-on, js: values).
htmx.config.allowEval = false;

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

document.addEventListener('htmx:configRequest', (event) => {
  event.detail.headers['X-CSRF-Token'] = csrfToken();
});

// A refused htmx request (4xx) still shows the server's message where the page asks for it.
document.addEventListener('htmx:beforeSwap', (event) => {
  const status = event.detail.xhr.status;
  if (status >= 400 && status < 500) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    const target = event.detail.requestConfig.elt.closest('[data-error-target]');
    if (target) {
      event.detail.target = document.querySelector(target.dataset.errorTarget);
    }
  }
});

document.addEventListener('click', (event) => {
  const toggle = event.target.closest('[data-toggle]');
  if (toggle) {
    const menu = document.getElementById(toggle.dataset.toggle);
    const open = menu.hasAttribute('hidden');
    menu.toggleAttribute('hidden', !open);
    toggle.setAttribute('aria-expanded', String(open));
    return;
  }
  document.querySelectorAll('[data-menu]:not([hidden])').forEach((menu) => {
    if (!menu.contains(event.target)) menu.setAttribute('hidden', '');
  });
});

// A file input's button is drawn by the browser in the browser's own language ("Choose
// Files"): each one gets a button in the page's language instead, and says what was chosen.
function dressFileInput(input) {
  if (input.dataset.dressed) return;
  input.dataset.dressed = 'true';
  const texts = document.body.dataset;
  const button = document.createElement('label');
  button.className = 'button file-pick';
  const caption = document.createElement('span');
  caption.textContent = input.dataset.pick || texts.filePick;
  const status = document.createElement('span');
  status.className = 'muted file-status';
  status.textContent = texts.noFile;
  input.classList.add('visually-hidden');
  input.replaceWith(button);
  button.append(input, caption);
  button.after(status);
  input.addEventListener('change', () => {
    const names = [...input.files].map((file) => file.name);
    status.textContent = names.length
      ? `${texts.filesChosen.replace('{n}', names.length)}: ${names.join(', ')}`
      : texts.noFile;
  });
}

const dressAll = (root) => root.querySelectorAll('input[type=file]').forEach(dressFileInput);
dressAll(document);
document.addEventListener('htmx:afterSwap', (event) => dressAll(event.detail.target));
document.addEventListener('reset', (event) => {
  event.target.querySelectorAll('.file-status').forEach((status) => {
    status.textContent = document.body.dataset.noFile;
  });
});

export { csrfToken };
