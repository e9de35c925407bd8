// At the site: position, camera and voice notes on the phone.
//
//   [data-locate]            fills the hidden lat/lng inputs of its [data-location] box
//   input[data-preview]      shows the chosen photos and videos before they are sent
//   [data-checkin]           checks in (with the position when the phone gives one within 8 s),
//                            then shows the work order's [data-site-actions]
//   [data-voice]             records a voice note (MediaRecorder), plays it back, uploads it
//   form[data-reset-after]   is cleared once htmx has sent it successfully
//   [data-print]             prints the page (the QR code label)
//
// Every text shown comes from data-* attributes the server rendered in the page language.

const GEO_TIMEOUT_MS = 8000;
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

// The phone's position, or null when it has none, the user refuses, or it takes too long.
function currentPosition() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (found) => resolve(found.coords),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: GEO_TIMEOUT_MS, maximumAge: 60000 },
    );
  });
}

async function post(url, body) {
  const isJson = !(body instanceof FormData);
  const response = await fetch(url, {
    method: 'POST',
    body: isJson ? JSON.stringify(body) : body,
    headers: {
      'X-CSRF-Token': csrfToken(),
      Accept: 'application/json',
      ...(isJson ? { 'Content-Type': 'application/json' } : {}),
    },
  });
  const answer = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(answer.detail || answer.title || response.statusText);
  return answer;
}

// ------------------------------------------------------------------ position on the report form

document.querySelectorAll('[data-locate]').forEach((button) => {
  button.addEventListener('click', async () => {
    const box = button.closest('[data-location]');
    const status = box.querySelector('[data-location-status]');
    button.disabled = true;
    status.textContent = button.dataset.busy;
    const coords = await currentPosition();
    button.disabled = false;
    if (!coords) {
      status.textContent = button.dataset.failed;
      return;
    }
    box.querySelector('input[name="lat"]').value = coords.latitude.toFixed(6);
    box.querySelector('input[name="lng"]').value = coords.longitude.toFixed(6);
    status.textContent = button.dataset.found.replace('{accuracy}', String(Math.round(coords.accuracy)));
  });
});

// ------------------------------------------------------------------ thumbnails before sending

function showPreview(input) {
  const box = document.querySelector(input.dataset.preview);
  if (!box) return;
  box.querySelectorAll('img, video').forEach((node) => URL.revokeObjectURL(node.src));
  const items = [...input.files].map((file) => {
    if (file.type.startsWith('image/') || file.type.startsWith('video/')) {
      const media = document.createElement(file.type.startsWith('image/') ? 'img' : 'video');
      media.src = URL.createObjectURL(file);
      media.title = file.name;
      if (media.tagName === 'VIDEO') Object.assign(media, { muted: true, playsInline: true, controls: true });
      else media.alt = file.name;
      return media;
    }
    return Object.assign(document.createElement('span'), { textContent: file.name });
  });
  box.replaceChildren(...items);
}

document.addEventListener('change', (event) => {
  const input = event.target.closest?.('input[type="file"][data-preview]');
  if (input) showPreview(input);
});

// ------------------------------------------------------------------ check-in

async function checkIn(box) {
  const status = box.querySelector('[data-checkin-status]');
  const button = box.querySelector('[data-checkin-button]');
  button.disabled = true;
  status.textContent = box.dataset.busy;
  const coords = await currentPosition();
  try {
    const answer = await post(box.dataset.url, {
      ticket_id: Number(box.dataset.ticketId),
      lat: coords ? coords.latitude : null,
      lng: coords ? coords.longitude : null,
      accuracy: coords ? coords.accuracy : null,
    });
    status.textContent = answer.distance ? `${answer.label} · ${answer.distance}` : answer.label;
    button.hidden = true;
    box.dataset.checked = '';
    box.closest('[data-site-ticket]')?.querySelector('[data-site-actions]')?.removeAttribute('hidden');
  } catch (error) {
    status.textContent = error.message;
    button.disabled = false;
  }
}

document.querySelectorAll('[data-checkin]').forEach((box) => {
  box.querySelector('[data-checkin-button]')?.addEventListener('click', () => checkIn(box));
  if ('auto' in box.dataset && !('checked' in box.dataset)) checkIn(box);
});

// ------------------------------------------------------------------ voice notes

function stamp(date) {
  const two = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${two(date.getMonth() + 1)}${two(date.getDate())}-${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

function setupVoice(root) {
  const record = root.querySelector('[data-voice-record]');
  const stop = root.querySelector('[data-voice-stop]');
  const send = root.querySelector('[data-voice-send]');
  const preview = root.querySelector('[data-voice-preview]');
  const status = root.querySelector('[data-voice-status]');
  if (!window.MediaRecorder || !navigator.mediaDevices?.getUserMedia) {
    record.disabled = true;
    status.textContent = root.dataset.unsupported;
    return;
  }
  // WebM where the browser records it (Chrome, Firefox, Android); Safari records MP4, which
  // the server accepts under the .mp4 extension.
  const type = MediaRecorder.isTypeSupported('audio/webm') ? 'audio/webm' : 'audio/mp4';
  const extension = type === 'audio/webm' ? 'webm' : 'mp4';
  let recorder = null;
  let recording = null;

  record.addEventListener('click', async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      status.textContent = root.dataset.denied;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream, { mimeType: type });
    recorder.addEventListener('dataavailable', (event) => {
      if (event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener('stop', () => {
      stream.getTracks().forEach((track) => track.stop());
      recording = new Blob(chunks, { type });
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.src = URL.createObjectURL(recording);
      preview.hidden = false;
      send.hidden = false;
      status.textContent = '';
    });
    recorder.start();
    record.hidden = true;
    stop.hidden = false;
    send.hidden = true;
    status.textContent = root.dataset.recording;
  });

  stop.addEventListener('click', () => {
    recorder?.stop();
    stop.hidden = true;
    record.hidden = false;
  });

  send.addEventListener('click', async () => {
    if (!recording) return;
    const body = new FormData();
    body.append('files', recording, `voice-${stamp(new Date())}.${extension}`);
    send.disabled = true;
    try {
      await post(root.dataset.url, body);
      status.textContent = root.dataset.sent;
      recording = null;
      preview.hidden = true;
      send.hidden = true;
      const list = document.querySelector(root.dataset.refresh);
      if (list && window.htmx) window.htmx.trigger(list, 'refresh');
    } catch (error) {
      status.textContent = error.message;
    } finally {
      send.disabled = false;
    }
  });
}

document.querySelectorAll('[data-voice]').forEach(setupVoice);

// ------------------------------------------------------------------ htmx forms and printing

document.addEventListener('htmx:afterRequest', (event) => {
  const form = event.detail.elt.closest?.('form[data-reset-after]');
  // app.js turns 4xx answers into swaps, so "successful" alone would also reset on errors.
  if (!form || event.detail.xhr.status >= 300) return;
  form.reset();
  form.querySelectorAll('input[data-preview]').forEach(showPreview);
  const errors = form.dataset.errorTarget && document.querySelector(form.dataset.errorTarget);
  if (errors) errors.replaceChildren();
});

document.addEventListener('click', (event) => {
  if (event.target.closest('[data-print]')) window.print();
});
