// Live hot-list alerts (R3.3, R3.4), for a patrol car's tablet: each hit
// arrives over Server-Sent Events (read with fetch so the session header
// goes with it), sounds a tone, shows the CLETS verification notice, and
// is acknowledged and given a disposition here.

import { api, imageUrl, streamEvents } from './api.js';
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

let audio = null;
function tone() {
  if (!audio) return;
  const now = audio.currentTime;
  for (const [i, f] of [880, 660, 880].entries()) {
    const o = audio.createOscillator(); const g = audio.createGain();
    o.frequency.value = f; o.connect(g); g.connect(audio.destination);
    g.gain.setValueAtTime(0.2, now + i * 0.18); g.gain.exponentialRampToValueAtTime(0.001, now + i * 0.18 + 0.16);
    o.start(now + i * 0.18); o.stop(now + i * 0.18 + 0.17);
  }
}

export async function alertsPage(main, { settings, signal }) {
  const choices = (settings && settings.dispositions) || FALLBACK_DISPOSITIONS;
  const cards = h('div', { class: 'alert-list', 'aria-live': 'assertive', 'aria-relevant': 'additions' });
  const status = h('span', { class: 'live-status', role: 'status' }, 'Connecting…');
  const soundButton = h('button', { type: 'button', 'aria-pressed': String(!!audio), onclick: () => {
    if (audio) { audio.close(); audio = null; } else { audio = new AudioContext(); tone(); }
    soundButton.setAttribute('aria-pressed', String(!!audio));
    soundButton.textContent = audio ? 'Sound on' : 'Sound off';
  } }, audio ? 'Sound on' : 'Sound off');
  const shown = new Map();

  put(main, ...heading('Live alerts', 'Hits on the hot lists appear here the moment a camera reads them. An alert alone is not grounds for a stop: verify it through CLETS first.'),
    h('div', { class: 'live-bar' }, status, soundButton), cards);

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
      h('p', { class: 'verify', role: 'note' }, a.verify_notice),
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
    shown.set(a.id, el);
    cards.prepend(el);
    if (fresh) { tone(); flash(`Alert: ${a.plate} — ${a.list_name}. Verify through CLETS.`, 'warn'); }
  }

  try {
    const open = await api('GET', '/api/v1/alerts?open=true&limit=50', undefined, { signal });
    open.alerts.reverse().forEach((a) => add(a, false));
  } catch (err) { if (err.name !== 'AbortError') cards.append(problem(err, 'Open alerts could not be listed.')); }
  if (!shown.size) cards.append(h('p', { class: 'empty', id: 'no-alerts' }, 'No open alerts. New ones appear here.'));

  // Keep the stream open; reconnect with growing pauses if it drops.
  let pause = 1000;
  while (!signal.aborted) {
    try {
      status.textContent = 'Connecting…';
      await streamEvents('/api/v1/alerts/stream', (type, data) => {
        if (type === 'alert') {
          const empty = document.getElementById('no-alerts'); if (empty) empty.remove();
          try { add(JSON.parse(data), true); } catch { /* a malformed event is skipped */ }
        } else if (type === 'lagged') {
          flash('Some alerts were missed while the connection was slow; the list below is reloaded.', 'warn');
        }
      }, signal, () => { status.textContent = 'Live: connected'; pause = 1000; });
    } catch (err) {
      if (signal.aborted || err.status === 401) return;
      if (err.status === 403) { status.textContent = `Not connected: ${err.message}`; return; }
    }
    if (signal.aborted) return;
    status.textContent = `Disconnected — reconnecting in ${Math.round(pause / 1000)} s`;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 30_000);
  }
}
