// Live position from the phone: while an engineer's inbox or pool page is open on a phone, its
// position goes to dispatch at most every 2 minutes, so that rankings start from where the
// engineer is rather than from the last check-in or the home base.
//
// Nothing is shown: a refused or unavailable position is skipped silently (dispatch falls back
// by itself), and an answer that says the position is not wanted (4xx) stops the sending.

const POSITION_URL = '/api/v1/engineers/me/position';
const EVERY_MS = 2 * 60 * 1000;
const GEO_OPTIONS = { enableHighAccuracy: true, timeout: 30000, maximumAge: 60000 };

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

let timer = null;
let lastSent = 0;
let refused = false;

function stop() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

async function send(coords) {
  // Several callbacks can land close together (visibility changes): one report per period.
  if (Date.now() - lastSent < EVERY_MS) return;
  lastSent = Date.now();
  try {
    const response = await fetch(POSITION_URL, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'X-CSRF-Token': csrfToken(),
      },
      body: JSON.stringify({
        lat: coords.latitude,
        lng: coords.longitude,
        accuracy_m: Number.isFinite(coords.accuracy) ? coords.accuracy : null,
      }),
    });
    if (response.status >= 400 && response.status < 500) {
      refused = true;
      stop();
    }
  } catch {
    // Offline for a moment: the next period tries again.
  }
}

function locate() {
  navigator.geolocation.getCurrentPosition(
    (found) => send(found.coords),
    (error) => {
      if (error.code === error.PERMISSION_DENIED) {
        refused = true;
        stop();
      }
    },
    GEO_OPTIONS,
  );
}

function start() {
  if (refused || timer !== null) return;
  locate();
  timer = setInterval(locate, EVERY_MS);
}

// Phones (a coarse pointer) only: a desk computer's position says nothing about the engineer.
const onPhone = window.matchMedia?.('(pointer: coarse)').matches;
if (onPhone && navigator.geolocation) {
  document.addEventListener('visibilitychange', () => (document.hidden ? stop() : start()));
  if (!document.hidden) start();
}
