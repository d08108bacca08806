// Live hot-list alerts (R3.3, R3.4), for a patrol car's tablet or a
// phone: hits arrive over the session's one stream (alertwatch.js, which
// also sounds them and shows them on every other page), show the CLETS
// verification notice, and are acknowledged and given a disposition here.

import { api, imageUrl } from './api.js';
import { subscribe, notificationState, askNotifications } from './alertwatch.js';
import { h, put, heading, field, input, select, values, when, problem, flash } from './dom.js';

// The server's list (GET /api/v1/ui/settings) when it gave one.
const FALLBACK_DISPOSITIONS = [
  { value: 'confirmed', label: 'Correct read, confirmed through CLETS' },
  { value: 'wrong_state', label: 'Wrong state' },
  { value: 'misread', label: 'Misread' },
  { value: 'not_wanted', label: 'No longer wanted' },
  { value: 'dismissed', label: 'Dismissed (not acted on)', needs_note: true },
  { value: 'other', label: 'Other', needs_note: true },
];

export async function alertsPage(main, { settings, signal }) {
  const choices = (settings && settings.dispositions) || FALLBACK_DISPOSITIONS;
  const cards = h('div', { class: 'alert-list', 'aria-live': 'assertive', 'aria-relevant': 'additions' });
  const status = h('span', { class: 'live-status', role: 'status' }, 'Connecting…');
  // Browser notifications, asked for once, from a click.
  const notify = h('span', { class: 'notify' });
  function drawNotify() {
    const st = notificationState();
    if (st === 'ask' || st === 'declined') {
      put(notify, h('button', { type: 'button', onclick: async () => { await askNotifications(); drawNotify(); } },
        'Notify me while this page is in the background'));
    } else {
      put(notify, st === 'on' ? 'Notifications on' : st === 'blocked' ? 'Notifications blocked in the browser\'s settings' : '');
    }
  }
  drawNotify();
  const shown = new Map();
  let noticeShown = sessionStorage.getItem('platekeeper.notice-shown') === '1';
  function shownNotice() { noticeShown = true; sessionStorage.setItem('platekeeper.notice-shown', '1'); }

  put(main, ...heading('Live alerts', 'Hits on the hot lists appear here the moment a camera reads them. An alert alone is not grounds for a stop: verify it through CLETS first.'),
    h('div', { class: 'live-bar' }, status, notify), cards);

  function card(a, fresh) {
    const out = h('div', { class: 'out' });
    // Nothing is chosen in advance: "confirmed" in particular is never
    // recorded without the officer picking it (issue 23 item 3).
    const menu = select('disposition', [['', 'Choose what verification found…'], ...choices.map((c) => [c.value, c.label])], a.disposition || '');
    menu.required = true;
    const note = input('note', { value: a.disposition_note || '', placeholder: 'stop made, arrest, towed, unable to locate…' });
    const needsNote = () => {
      const c = choices.find((x) => x.value === menu.value);
      note.required = Boolean(c && (c.needs_note || c.value === 'confirmed'));
    };
    menu.addEventListener('change', needsNote);
    const form = h('form', { class: 'disposition' },
      field('Disposition', menu),
      field('Action taken', note),
      h('button', { type: 'submit' }, 'Record disposition'));
    const pics = h('div', { class: 'pictures' });
    // A disposition acknowledges too (the server records both).
    const acknowledged = () => { ack.disabled = true; ack.textContent = 'Acknowledged'; el.classList.remove('unacked'); };
    const ack = h('button', { type: 'button', class: 'primary', disabled: !!a.acknowledged_by, onclick: async () => {
      try { await api('POST', `/api/v1/alerts/${a.id}/ack`); acknowledged(); } catch (err) { put(out, problem(err)); }
    } }, a.acknowledged_by ? 'Acknowledged' : 'Acknowledge');
    const el = h('article', { class: `alert-card${a.acknowledged_by ? '' : ' unacked'}${fresh ? ' fresh' : ''}`, id: `alert-${a.id}`, 'aria-label': `Alert ${a.id}: ${a.plate}` },
      h('header', {},
        h('span', { class: 'plate big' }, a.plate), a.state ? h('span', { class: 'state' }, a.state) : null,
        h('span', { class: 'kind' }, a.kind.replace(/_/g, ' '))),
      // The notice in full on the first card of the session, then folded
      // (a phone shows it once, not on every card).
      h('details', { class: 'verify', open: fresh && !noticeShown },
        h('summary', {}, 'Verify through CLETS before acting'), h('p', { role: 'note' }, a.verify_notice)),
      h('dl', {},
        h('dt', {}, 'List'), h('dd', {}, a.list_name),
        h('dt', {}, 'Reason'), h('dd', {}, a.reason),
        a.case_number ? [h('dt', {}, 'Case'), h('dd', {}, a.case_number)] : null,
        a.entry_plate !== a.plate ? [h('dt', {}, 'Entry'), h('dd', {}, `${a.entry_plate} (partial or misread match)`)] : null,
        h('dt', {}, 'Seen'), h('dd', {}, `${when(a.read_ts_ms)} by camera ${a.camera}`),
        a.position ? [h('dt', {}, 'Where'), h('dd', {}, `${a.position.lat.toFixed(5)}, ${a.position.lon.toFixed(5)}`)] : null),
      h('div', { class: 'actions' }, ack,
        h('button', { type: 'button', onclick: async (e) => {
          e.target.disabled = true;
          try {
            const r = await api('POST', `/api/v1/alerts/${a.id}/read`);
            for (const u of [r.read && r.read.image_url, r.read && r.read.plate_image_url]) {
              if (u) pics.append(h('img', { src: await imageUrl(u), alt: `Picture of ${a.plate}` }));
            }
            if (!pics.children.length) pics.append(h('p', {}, 'This read has no pictures.'));
          } catch (err) { put(out, problem(err)); }
        } }, 'Show pictures')),
      pics, form, out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const v = values(form);
      try {
        await api('POST', `/api/v1/alerts/${a.id}/disposition`, { disposition: v.disposition, note: v.note });
        put(out, h('p', { class: 'notice' }, `Disposition "${v.disposition}" recorded.`));
        acknowledged();
      } catch (err) { put(out, problem(err, 'Not recorded.')); }
    });
    return el;
  }

  function add(a, fresh) {
    if (shown.has(a.id)) return;
    const el = card(a, fresh);
    if (fresh) shownNotice();
    shown.set(a.id, el);
    cards.prepend(el);
    if (fresh) flash(`Alert: ${a.plate} — ${a.list_name}. Verify through CLETS.`, 'warn');
  }

  try {
    const open = await api('GET', '/api/v1/alerts?open=true&limit=50', undefined, { signal });
    open.alerts.reverse().forEach((a) => add(a, false));
    // The notice in full once: on the newest card, the first time.
    const top = cards.querySelector('details.verify');
    if (top && !noticeShown) { top.open = true; shownNotice(); }
  } catch (err) { if (err.name !== 'AbortError') cards.append(problem(err, 'Open alerts could not be listed.')); }
  if (!shown.size) cards.append(h('p', { class: 'empty', id: 'no-alerts' }, 'No open alerts. New ones appear here.'));

  // Hits arrive over the session's stream (alertwatch.js).
  const stop = subscribe((e) => {
    if (e.type === 'status') status.textContent = e.status.text;
    else if (e.type === 'alert') {
      const empty = document.getElementById('no-alerts'); if (empty) empty.remove();
      add(e.alert, true);
    } else if (e.type === 'lagged') {
      flash('Some alerts were missed while the connection was slow; reload this page to list them.', 'warn');
    }
  });
  signal.addEventListener('abort', stop, { once: true });
}
