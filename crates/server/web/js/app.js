// The shell: who is signed in, the menu their role allows, and which
// page is open (the part of the address after #/).

import { api, session } from './api.js';
import { h, put, flash, problem, DENIAL_HELP } from './dom.js';
import { signIn, enrol } from './signin.js';
import { searchPage, holdsPage } from './search.js';
import { alertsPage } from './alerts.js';
import { hotlistsPage } from './hotlists.js';
import { usersPage, camerasPage, policyPage } from './admin.js';
import { sharingPage } from './sharing.js';
import { devicesPage } from './devices.js';
import { recordsPage } from './records.js';
import { auditPage } from './audit.js';
import { accountPage } from './passkeys.js';
import { startWatching, stopWatching, markSeen, unseenCount, muted, setMuted } from './alertwatch.js';

// Each page, the right that opens it (from the role table, via /me) and
// its menu label. The server checks the right again on every call.
const PAGES = [
  { id: 'search', label: 'Search', right: 'search_reads', view: searchPage },
  { id: 'alerts', label: 'Alerts', right: 'view_alerts', view: alertsPage },
  { id: 'hotlists', label: 'Hot lists', right: 'view_alerts', view: hotlistsPage },
  { id: 'holds', label: 'Holds & evidence', right: 'hold_reads', view: holdsPage },
  { id: 'users', label: 'Users', right: 'manage_accounts', view: usersPage },
  { id: 'cameras', label: 'Cameras', right: 'manage_cameras', view: camerasPage },
  { id: 'devices', label: 'Devices', right: 'manage_accounts', view: devicesPage },
  { id: 'sharing', label: 'Sharing', right: 'manage_sharing', view: sharingPage },
  { id: 'records', label: 'Records', right: 'manage_policy', view: recordsPage },
  { id: 'policy', label: 'Policy', right: 'manage_policy', view: policyPage },
  { id: 'audit', label: 'Audit', right: 'read_audit_log', view: auditPage },
  { id: 'account', label: 'Account', right: null, view: accountPage },
];

const state = { me: null, settings: null, controller: null, expiryTimers: [], watching: false };
const main = document.getElementById('main');

function allowed() {
  return PAGES.filter((p) => state.me && (p.right === null || state.me.rights.includes(p.right)));
}

function route() {
  const [id, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return { id, rest };
}

function drawChrome() {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!state.me || state.me.next.length) {
    nav.replaceChildren();
    put(who, h('a', { href: '/transparency' }, 'Transparency'));
    return;
  }
  const current = route().id;
  const fresh = unseenCount();
  put(nav, h('ul', {}, allowed().map((p) => h('li', {},
    h('a', { href: `#/${p.id}`, 'aria-current': p.id === current ? 'page' : null }, p.label,
      p.id === 'alerts' && fresh ? h('span', { class: 'badge', id: 'alerts-count', 'aria-label': `${fresh} new` }, String(fresh)) : null)))));
  const s = session.get();
  const alerts = state.me.rights.includes('view_alerts');
  const sound = alerts ? h('button', { type: 'button', class: 'link', 'aria-pressed': String(!muted()), title: 'Alert sound (AMBER, warrant, wanted and missing-person hits sound even when off)',
    onclick: () => { setMuted(!muted()); drawChrome(); } }, muted() ? 'Sound off' : 'Sound on') : null;
  // Which agency device this is, or that it is none where one is needed
  // (issue 24 item 3): the officer learns it before a search is refused.
  const device = state.me.device
    ? h('span', { class: 'device', title: 'A registered agency device' }, state.me.device.name)
    : (state.me.devices_required ? h('span', { class: 'device warn', title: state.me.device_problem || '' }, 'Not an agency device: plate data is refused here') : null);
  put(who,
    h('span', { class: 'me' }, `${state.me.name} · ${state.me.role}`),
    device,
    sound,
    s && s.expires_at ? h('span', { class: 'expires', title: 'Your session ends then; you will be asked to sign in again.' },
      `until ${new Date(s.expires_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`) : null,
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  stopWatching();
  state.watching = false;
  try { await api('DELETE', '/api/v1/session'); } catch { /* already ended */ }
  session.clear();
  state.me = null;
  flash('Signed out.');
  show();
}

/** Warns before the session ends, and ends it cleanly when it does. */
function watchExpiry() {
  state.expiryTimers.forEach(clearTimeout);
  state.expiryTimers = [];
  const s = session.get();
  if (!s || !s.expires_at) return;
  const left = new Date(s.expires_at).getTime() - Date.now();
  if (left > 5 * 60_000) {
    state.expiryTimers.push(setTimeout(() => flash('Your session ends in 5 minutes. Finish what you are doing; you will then be asked to sign in again.', 'warn'), left - 5 * 60_000));
  }
  state.expiryTimers.push(setTimeout(() => ended('Your session has ended. Sign in again to go on where you were.'), Math.max(0, left)));
}

function ended(message) {
  stopWatching();
  state.watching = false;
  session.clear();
  state.me = null;
  if (state.controller) state.controller.abort();
  show(message);
}

window.addEventListener('session-ended', (e) => {
  if (!state.me) return;
  const err = e.detail;
  // One session per person: a sign-in elsewhere ends this one; say when,
  // in the person's own time (issue 23 item 4).
  if (err.code === 'signed_in_elsewhere' && err.error && err.error.at) {
    const at = new Date(err.error.at);
    const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    ended(`You signed in on another device at ${time}, so this session ended. Sign in again here to go on where you were; the other session then ends.`);
    return;
  }
  ended(`Your session has ended (${err.message}). Sign in again to go on where you were.`);
});

function offline() {
  put(main, h('div', { class: 'card narrow' },
    h('h1', {}, 'No connection to the server'),
    h('p', { class: 'lead' }, 'This device keeps only the interface itself, never plate data, alerts or searches, so nothing can be shown until the connection returns. Your session is kept.'),
    h('button', { type: 'button', class: 'primary', onclick: () => show() }, 'Try again')));
}

/** Draws the page the address names, or sign-in. */
async function show(message) {
  if (state.controller) state.controller.abort();
  state.controller = new AbortController();
  const signal = state.controller.signal;
  if (!state.settings) {
    try { state.settings = await api('GET', '/api/v1/ui/settings'); } catch { state.settings = { agency_name: 'Platekeeper', map: { center_lat: 37, center_lon: -119.5, zoom: 6, tile_url: '' } }; }
    document.getElementById('agency').textContent = state.settings.agency_name;
  }
  if (session.get() && !state.me) {
    try { state.me = await api('GET', '/api/v1/me'); } catch (err) {
      // Without a connection the shell still starts (sw.js), but nothing
      // of the agency's data is on this device: say so, keep the session.
      if (err.code === 'network') { offline(); return; }
      state.me = null; session.clear();
    }
  }
  drawChrome();
  if (!state.me) {
    signIn(main, { settings: state.settings, message, onSignedIn: afterSignIn });
    return;
  }
  if (state.me.next.length) {
    enrol(main, { me: state.me, onDone: afterSignIn });
    return;
  }
  // Hits reach every page, not only Alerts (issue 23 item 1).
  if (!state.watching && state.me.rights.includes('view_alerts')) {
    state.watching = true;
    startWatching({ onCount: () => drawChrome(), onAlertsPage: () => route().id === 'alerts' });
  }
  const pages = allowed();
  let { id, rest } = route();
  let page = pages.find((p) => p.id === id);
  if (!page) {
    if (!pages.length) {
      put(main, h('h1', {}, 'Nothing to open here'),
        h('p', {}, 'Your role has no pages in this interface.'));
      return;
    }
    page = pages[0];
    history.replaceState(null, '', `#/${page.id}`);
    rest = [];
    drawChrome();
  }
  if (page.id === 'alerts') { markSeen(); const b = document.getElementById('alert-banner'); if (b) b.replaceChildren(); }
  document.title = `${page.label} — Platekeeper`;
  // Each page draws into its own element: a page left while it was still
  // loading then draws into a detached element, never over the next one.
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  main.focus({ preventScroll: true });
  try {
    await page.view(view, { me: state.me, settings: state.settings, rest, signal });
  } catch (e) {
    if (e.name !== 'AbortError') put(view, h('h1', {}, page.label), problem(e, DENIAL_HELP[e.code]));
  }
}

async function afterSignIn() {
  state.me = await api('GET', '/api/v1/me');
  watchExpiry();
  show();
}

window.addEventListener('hashchange', () => show());
// Installable on a phone or tablet; the worker keeps the shell only.
if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => {});
watchExpiry();
show();
