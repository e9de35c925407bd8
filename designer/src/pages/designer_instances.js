// The instance view of one deployed version (/designer/<key>/versions/<n>): the diagram with a
// badge on each element where running work orders of that version wait now, linking to them.
//
// <div id="designer-instances" data-key="it_service" data-version="1"
//      data-api="/api/v1/designer" data-lang="zh"></div>
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import '../designer/designer.css';

import { createApi, el, texts } from '../designer/dom.js';

async function mount(root) {
  const { key, version } = root.dataset;
  const base = root.dataset.api || '/api/v1/designer';
  const { t } = texts(root.dataset.lang === 'en' ? 'en' : 'zh');
  const api = createApi(base);
  const path = `/processes/${encodeURIComponent(key)}/versions/${encodeURIComponent(version)}`;
  const [xml, waiting] = await Promise.all([
    fetch(`${base}${path}/bpmn`, { credentials: 'same-origin' }).then((response) => {
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      return response.text();
    }),
    api.get(`${path}/waiting`),
  ]);
  const container = el('div', { class: 'designer-instances-canvas' });
  const summary = el('p', { class: 'designer-instances-summary', role: 'status' });
  root.replaceChildren(summary, container);
  const viewer = new NavigatedViewer({ container });
  await viewer.importXML(xml);
  const canvas = viewer.get('canvas');
  const overlays = viewer.get('overlays');
  const registry = viewer.get('elementRegistry');
  const links = waiting.links || {};
  let total = 0;
  for (const [id, count] of Object.entries(waiting.elements || {})) {
    if (!count || !registry.get(id)) continue;
    total += count;
    const params = new URLSearchParams({ process: key, version, element: id });
    overlays.add(id, 'paidan-waiting', {
      position: { top: -12, right: 12 },
      html: el(
        'a',
        {
          class: 'designer-waiting',
          href: links[id] || `/tickets?${params}`,
          'data-element-id': id,
          'data-count': String(count),
          title: t(`${count} 个工单在此等待`, `${count} work order(s) waiting here`),
        },
        String(count),
      ),
    });
    canvas.addMarker(id, 'designer-has-waiting');
  }
  summary.textContent = t(`共有 ${total} 个工单在等待`, `${total} work order(s) waiting in all`);
  canvas.zoom('fit-viewport', 'auto');
  root.dataset.ready = 'true';
  window.paidanInstances = { viewer };
}

const root = document.getElementById('designer-instances');
if (root) {
  mount(root).catch((error) => {
    root.dataset.ready = 'failed';
    root.append(el('p', { class: 'designer-error', role: 'alert' }, error.problem?.detail || error.message));
  });
}
