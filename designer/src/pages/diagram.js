// The BPMN diagram island of the work-order page (bpmn-js viewer with step markers).
//
// <div class="diagram" data-diagram data-url="/tickets/42/diagram.xml"></div>
// <script type="application/json" data-diagram-markers>{"done": [...], "current": [...]}</script>
// <p data-diagram-error hidden>…</p>
//
// Loads the work order's definition version, marks what is behind it `done` and what it
// waits on `current` (paidan.css colours both), and fits the diagram into the box. The
// viewer can be panned and zoomed; it cannot be edited. Sets data-ready="true" when drawn.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';

const readMarkers = (section) => {
  const node = section.querySelector('[data-diagram-markers]');
  const markers = node ? JSON.parse(node.textContent) : {};
  return { done: markers.done || [], current: markers.current || [] };
};

async function mount(container) {
  const section = container.parentElement;
  const response = await fetch(container.dataset.url, {
    headers: { Accept: 'application/xml' },
    credentials: 'same-origin',
  });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const viewer = new NavigatedViewer({ container });
  await viewer.importXML(await response.text());

  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  const { done, current } = readMarkers(section);
  for (const [marker, ids] of [['done', done], ['current', current]]) {
    for (const id of ids) {
      // History may name elements this version does not draw (e.g. a process id).
      if (registry.get(id)) canvas.addMarker(id, marker);
    }
  }
  canvas.zoom('fit-viewport', 'auto');
  container.dataset.ready = 'true';
}

document.querySelectorAll('[data-diagram]').forEach((container) => {
  mount(container).catch(() => {
    container.hidden = true;
    container.parentElement.querySelector('[data-diagram-error]')?.removeAttribute('hidden');
  });
});
