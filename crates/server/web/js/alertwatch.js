// Alerts wherever the officer is (issue 23 item 1): one stream for the
// whole signed-in session, whatever page is open. Each hit shows a banner
// on every page, sounds unless muted (the most urgent lists sound even
// then), is counted in the menu until the Alerts page is opened, raises a
// browser notification while the page is in the background, and is handed
// to the Alerts page when that page is open.

import { streamEvents } from './api.js';
import { h, put } from './dom.js';

/** Lists whose hits sound even when sound is muted. */
const URGENT = new Set(['amber', 'warrant', 'wanted', 'missing_person']);
const MUTE_KEY = 'platekeeper.muted';
const ASKED_KEY = 'platekeeper.notifications-asked';

let controller = null;
let unseen = 0;
let audio = null;
let status = { state: 'off', text: 'Not connected' };
const listeners = new Set();
const hooks = { onCount: () => {}, onAlertsPage: () => false };

/** Hits are heard only once the browser allows sound: after a click. */
function unlockAudio() {
  try {
    if (!audio) audio = new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch { /* no Web Audio: the banner and notification remain */ }
}
document.addEventListener('pointerdown', unlockAudio, { capture: true });
document.addEventListener('keydown', unlockAudio, { capture: true });

export function muted() { return localStorage.getItem(MUTE_KEY) === '1'; }

export function setMuted(m) {
  if (m) localStorage.setItem(MUTE_KEY, '1'); else localStorage.removeItem(MUTE_KEY);
  if (!m) tone(false);
}

function tone(urgent) {
  if (!audio || audio.state !== 'running') return;
  const now = audio.currentTime;
  const notes = urgent ? [988, 740, 988, 740, 988] : [880, 660, 880];
  for (const [i, f] of notes.entries()) {
    const o = audio.createOscillator(); const g = audio.createGain();
    o.frequency.value = f; o.connect(g); g.connect(audio.destination);
    g.gain.setValueAtTime(0.2, now + i * 0.18); g.gain.exponentialRampToValueAtTime(0.001, now + i * 0.18 + 0.16);
    o.start(now + i * 0.18); o.stop(now + i * 0.18 + 0.17);
  }
}

/** `fn({type: 'alert', alert} | {type: 'lagged'} | {type: 'status', status})`; returns the unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  fn({ type: 'status', status });
  return () => listeners.delete(fn);
}

function emit(event) { listeners.forEach((fn) => fn(event)); }

function setStatus(state, text) {
  status = { state, text };
  // For scripts and tests: whether the stream is up, on every page.
  document.documentElement.dataset.alertStream = state;
  emit({ type: 'status', status });
}

export function unseenCount() { return unseen; }

/** The Alerts page is open: every hit so far is seen. */
export function markSeen() {
  unseen = 0;
  hooks.onCount(0);
}

/** Whether the browser may show notifications, and whether to offer asking. */
export function notificationState() {
  if (!('Notification' in window)) return 'unsupported';
  if (Notification.permission === 'granted') return 'on';
  if (Notification.permission === 'denied') return 'blocked';
  return localStorage.getItem(ASKED_KEY) ? 'declined' : 'ask';
}

/** Asks once (from a click) whether hits may be shown while in the background. */
export async function askNotifications() {
  localStorage.setItem(ASKED_KEY, '1');
  if (!('Notification' in window)) return 'unsupported';
  try { await Notification.requestPermission(); } catch { /* older API */ }
  return notificationState();
}

/** Starts watching for the signed-in person; `onCount(n)` redraws the menu's count. */
export function startWatching({ onCount, onAlertsPage }) {
  stopWatching();
  hooks.onCount = onCount;
  hooks.onAlertsPage = onAlertsPage;
  controller = new AbortController();
  run(controller.signal);
}

export function stopWatching() {
  if (controller) controller.abort();
  controller = null;
  unseen = 0;
  setStatus('off', 'Not connected');
  const banner = document.getElementById('alert-banner');
  if (banner) banner.replaceChildren();
}

async function run(signal) {
  let pause = 1000;
  while (!signal.aborted) {
    try {
      setStatus('connecting', 'Connecting…');
      await streamEvents('/api/v1/alerts/stream', (type, data) => {
        if (type === 'alert') {
          let a;
          try { a = JSON.parse(data); } catch { return; }
          arrived(a);
        } else if (type === 'lagged') {
          emit({ type: 'lagged' });
        }
      }, signal, () => { setStatus('connected', 'Live: connected'); pause = 1000; });
    } catch (err) {
      if (signal.aborted || err.status === 401) return;
      if (err.status === 403) { setStatus('refused', `Not connected: ${err.message}`); return; }
    }
    if (signal.aborted) return;
    setStatus('disconnected', `Disconnected — reconnecting in ${Math.round(pause / 1000)} s`);
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 30_000);
  }
}

function arrived(a) {
  const urgent = URGENT.has(a.kind);
  if (!muted() || urgent) tone(urgent);
  if (!hooks.onAlertsPage()) {
    unseen += 1;
    hooks.onCount(unseen);
    banner(a, urgent);
  }
  if (document.hidden && notificationState() === 'on') {
    try {
      const n = new Notification(`Hot-list hit: ${a.plate}${a.state ? ` (${a.state})` : ''}`, {
        body: `${a.list_name}: ${a.reason}. Verify through CLETS before acting.`,
        tag: `platekeeper-alert-${a.id}`,
        requireInteraction: urgent,
      });
      n.onclick = () => { window.focus(); location.hash = '#/alerts'; n.close(); };
    } catch { /* notifications unavailable here */ }
  }
  emit({ type: 'alert', alert: a });
}

/** The newest hit, at the top of whatever page is open. */
function banner(a, urgent) {
  const el = document.getElementById('alert-banner');
  if (!el) return;
  put(el, h('div', { class: `alert-banner${urgent ? ' urgent' : ''}`, role: 'alert' },
    h('strong', {}, 'Hot-list hit: '),
    h('span', { class: 'plate' }, a.plate), a.state ? ` ${a.state}` : '',
    ` — ${a.list_name}: ${a.reason}. Verify through CLETS before acting. `,
    h('a', { href: '#/alerts' }, unseen > 1 ? `Open ${unseen} alerts` : 'Open the alert'),
    ' ',
    h('button', { type: 'button', class: 'link', onclick: () => el.replaceChildren() }, 'Hide')));
}
