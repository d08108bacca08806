// Search and canvass (R2), legal holds and evidence (R6.2). The purpose
// comes first: the server logs it before it returns anything, and a
// refusal is explained here in plain words before any result is shown.

import { api, imageUrl, saveThroughLink } from './api.js';
import { h, put, heading, field, input, select, values, table, when, toUtc, localValue, problem, busy, flash, DENIAL_HELP, ask } from './dom.js';
import { MapView } from './map.js';
import { geocode } from './geocode.js';

/** Why a purpose was refused, by the server's `detail`, for people. */
const PURPOSE_HELP = {
  missing_case_number: 'Every search must name the case or incident number it is for. Policy requires a documented purpose for each access to ALPR data.',
  case_number_format: 'The case number is not in your agency\'s format. Copy it from the report or CAD incident.',
  generic_reason: 'A word like "investigation" alone does not say which investigation. Give the case number, or the suspect\'s last name, or what you are trying to find out, e.g. "vehicle seen leaving the robbery".',
  personal_information: 'The purpose is kept in the audit log, which auditors and the public records process read. The suspect\'s last name may be given; leave out first names, dates of birth, addresses, licence and social security numbers, criminal history and anything from CLETS.',
  offense_not_listed: 'The offense must be one your agency\'s policy lists. Use the code section or the listed name.',
  immigration_enforcement: 'California law (Government Code § 7284.6) forbids using ALPR data for immigration enforcement. This search cannot be made.',
  missing_field: 'Fill in the case number, the offense and the reason.',
  field_too_long: 'One of the purpose fields is too long.',
};

/** Other refusals that people can fix in the form. */
const QUERY_HELP = {
  query_too_broad: 'A search without a plate (a canvass) must give From and To, at most 7 days apart.',
  invalid_pattern: 'Plates are letters and digits; ? stands for one character and * for any run.',
};

function explainRefusal(err, rule) {
  const help = PURPOSE_HELP[err.detail] || QUERY_HELP[err.code] || DENIAL_HELP[err.code];
  const aboutPurpose = Boolean(PURPOSE_HELP[err.detail]);
  return h('div', { class: 'refusal', role: 'alert' },
    h('h2', {}, 'Search refused — nothing was returned'),
    h('p', {}, err.message, h('span', { class: 'code' }, ` (${err.detail || err.code})`)),
    help ? h('p', {}, help) : null,
    aboutPurpose && rule ? h('p', { class: 'rule' }, rule) : null);
}

export async function searchPage(main, ctx) {
  const { me, settings, signal } = ctx;
  const may = (r) => me.rights.includes(r);
  let lastQuery = null;
  let results = [];
  let accessId = null;
  // The first page's count of every match (the server counts to 10,000).
  let total = null;
  // Newest first, as the server sends them, until a column is chosen.
  let order = { key: 'ts', desc: true };
  const selected = new Set();
  const thumbs = [];

  const out = h('div', { class: 'results', 'aria-live': 'polite' },
    h('p', { class: 'empty' }, 'Results appear here after a search. Each search is logged with its purpose.'));
  const shapeText = h('p', { class: 'shape-text' }, 'No area: draw a radius or a polygon on the map to canvass.');
  let shape = null;
  const map = new MapView(settings.map, {
    label: 'Search map',
    onShape: (s) => { if (s) { shape = s; describeShape(); defaultWindow(); } else dropArea(); },
    onPick: (r) => { map.select(r.id); const row = document.getElementById(`read-${r.id}`); if (row) { row.scrollIntoView({ block: 'nearest' }); row.classList.add('picked'); setTimeout(() => row.classList.remove('picked'), 1500); } },
  });

  const area = {
    lat: input('lat', { inputmode: 'decimal', placeholder: '37.8044' }),
    lon: input('lon', { inputmode: 'decimal', placeholder: '-122.2712' }),
    radius: input('radius_m', { inputmode: 'numeric', placeholder: '500' }),
  };
  function describeShape() {
    if (!shape) { shapeText.textContent = 'No area: draw a radius or a polygon on the map to canvass.'; return; }
    if (shape.kind === 'circle') {
      area.lat.value = shape.center.lat.toFixed(5);
      area.lon.value = shape.center.lon.toFixed(5);
      area.radius.value = String(shape.radius_m);
      shapeText.textContent = `Canvass: ${shape.radius_m} m around ${shape.center.lat.toFixed(5)}, ${shape.center.lon.toFixed(5)}`;
    } else {
      area.lat.value = ''; area.lon.value = ''; area.radius.value = '';
      shapeText.textContent = `Canvass: inside a polygon of ${shape.points.length} corners`;
    }
  }
  // A canvass needs a time window: offer the last 24 hours when none is set.
  // A window set for a canvass belongs to it: it goes when the area goes,
  // so it never narrows a later plate search unseen (issue 23 item 6).
  let canvassWindow = false;
  function defaultWindow() {
    const f = form.elements.from; const t = form.elements.to;
    if (!shape || f.value || t.value) return;
    const now = new Date();
    f.value = localValue(new Date(now.getTime() - 86_400_000));
    t.value = localValue(now);
    canvassWindow = true;
    flash('Time window set to the last 24 hours for the canvass; change it if needed.');
  }
  function dropArea() {
    if (!shape) return;
    shape = null;
    map.clearShape();
    area.lat.value = ''; area.lon.value = ''; area.radius.value = '';
    describeShape();
    if (canvassWindow) {
      form.elements.from.value = '';
      form.elements.to.value = '';
      canvassWindow = false;
      flash('Area removed, and the time window set for the canvass with it.');
    }
  }
  const typedArea = () => {
    const lat = parseFloat(area.lat.value); const lon = parseFloat(area.lon.value); const r = parseFloat(area.radius.value);
    if ([lat, lon, r].every(Number.isFinite)) {
      shape = { kind: 'circle', center: { lat, lon }, radius_m: r };
      map.setShape(shape, true);
      describeShape();
    }
  };
  // Emptying a field of a radius removes the area: a half-described circle
  // is no area, and the old one must not stay in force unseen.
  const emptiedArea = () => {
    if (shape && shape.kind === 'circle' && Object.values(area).some((el) => el.value.trim() === '')) dropArea();
  };
  Object.values(area).forEach((el) => { el.addEventListener('change', typedArea); el.addEventListener('input', emptiedArea); });

  let cameras = [];
  try { cameras = (await api('GET', '/api/v1/cameras?limit=1000', undefined, { signal })).cameras; } catch { /* role without camera list */ }
  map.setLayer('cameras', cameras.filter((c) => c.lat !== null).map((c) => ({ lat: c.lat, lon: c.lon })));

  const form = h('form', { class: 'search-form', 'aria-label': 'Search reads' },
    h('fieldset', { class: 'purpose' },
      h('legend', {}, 'Purpose (required, logged before any result)'),
      field('Case or incident number', input('case_number', { required: true, placeholder: '26-004211' })),
      field('Offense', input('offense', { placeholder: '211 PC robbery' })),
      field('Reason', input('reason', { placeholder: 'vehicle seen leaving the robbery' }),
        settings.purpose_rule || 'Name the specific investigation: a case number, or the suspect\'s last name.')),
    h('fieldset', {},
      h('legend', {}, 'What to look for'),
      field('Plate', input('plate', { placeholder: '7ABC123, 7AB?12*, *4KX*', autocapitalize: 'characters', spellcheck: 'false' }),
        '? is one character, * any run. Leave empty to canvass an area.'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'fuzzy' }), ' Also match common misreads (0/O/D/Q, 1/I/L/T, 8/B, 5/S, 2/Z, 6/G)'),
      h('div', { class: 'row' },
        field('From', input('from', { type: 'datetime-local' })),
        field('To', input('to', { type: 'datetime-local' }))),
      h('small', { class: 'hint' }, 'A canvass (no plate) needs From and To, at most 7 days apart.'),
      h('div', { class: 'row' },
        field('Camera', select('camera', [['', 'Any camera'], ...cameras.map((c) => [c.id, `${c.name} (${c.id})`])])),
        field('State', input('state', { maxlength: '2', placeholder: 'CA', autocapitalize: 'characters' })))),
    h('fieldset', {},
      h('legend', {}, 'Area (canvass)'),
      shapeText,
      addressSearch(),
      h('div', { class: 'row' }, field('Latitude', area.lat), field('Longitude', area.lon), field('Radius (m)', area.radius))),
    h('div', { class: 'actions' },
      h('button', { class: 'primary', type: 'submit' }, 'Search'),
      h('button', { type: 'button', onclick: clear }, 'Clear')));

  // With the agency's own geocoder set: find an address, centre the map
  // there and put a radius around it (none otherwise: no address leaves).
  function addressSearch() {
    const url = settings.map.geocoder_url;
    if (!url) return null;
    const text = input('address', { placeholder: '1 Frank H Ogawa Plaza, Oakland', autocomplete: 'off' });
    const found = h('ul', { class: 'places', 'aria-live': 'polite' });
    const go = async () => {
      if (!text.value.trim()) return;
      put(found, h('li', {}, 'Searching…'));
      try {
        const list = await geocode(url, text.value, signal);
        put(found, list.length ? list.map((p) => h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => choose(p) }, p.label)))
          : h('li', {}, 'No place found for that address.'));
      } catch (err) { if (err.name !== 'AbortError') put(found, h('li', { class: 'error' }, `Address search failed: ${err.message}`)); }
    };
    const choose = (p) => {
      area.lat.value = p.lat.toFixed(5);
      area.lon.value = p.lon.toFixed(5);
      if (!area.radius.value) area.radius.value = '300';
      typedArea();
      defaultWindow();
      map.fit([p]);
      put(found, h('li', {}, `Centred on ${p.label}.`));
    };
    text.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); go(); } });
    return h('div', { class: 'address' },
      h('div', { class: 'row' }, field('Address', text), h('button', { type: 'button', onclick: go }, 'Find address')),
      settings.map.geocoder_warning ? h('p', { class: 'map-warning', role: 'note' }, settings.map.geocoder_warning) : null,
      found);
  }

  // Clear empties what to look for and the area; the purpose stays, as it
  // does for the next search in the same case.
  function clear() {
    const keep = new Set(['case_number', 'offense', 'reason']);
    for (const el of form.elements) {
      if (!el.name || keep.has(el.name)) continue;
      if (el.type === 'checkbox') el.checked = false;
      else if (el.tagName === 'SELECT') el.selectedIndex = 0;
      else el.value = '';
    }
    canvassWindow = false;
    dropArea();
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = values(form);
    const q = {
      plate: v.plate || undefined,
      fuzzy: v.fuzzy,
      from: toUtc(v.from),
      to: toUtc(v.to),
      camera: v.camera || undefined,
      state: v.state || undefined,
      purpose: { case_number: v.case_number, offense: v.offense, reason: v.reason },
      limit: 200,
    };
    if (shape && shape.kind === 'circle') q.near = { lat: shape.center.lat, lon: shape.center.lon, radius_m: shape.radius_m };
    if (shape && shape.kind === 'polygon') q.polygon = shape.points.map((p) => ({ lat: p.lat, lon: p.lon }));
    if (shape && (v.from || v.to)) canvassWindow = true;
    busy(form, () => run(q, false));
  });

  async function run(q, more) {
    try {
      const res = await api('POST', '/api/v1/search', q, { signal });
      lastQuery = { ...q, cursor: res.next_cursor };
      accessId = res.access_id;
      if (!more) { results = []; selected.clear(); thumbs.splice(0).forEach(URL.revokeObjectURL); thumbOf.clear(); total = res.total; }
      // Each read keeps the access that returned it: its pictures and its
      // correction are opened under that one.
      results = results.concat(res.results.map((x) => ({ ...x, access_id: res.access_id })));
      draw(res);
    } catch (err) {
      if (err.name === 'AbortError') return;
      put(out, err.status === 422 || err.status === 403 ? explainRefusal(err, settings.purpose_rule) : problem(err, 'Search failed.'));
    }
  }

  function draw(res) {
    const pts = results.map((r) => ({ id: r.read_id, lat: r.lat, lon: r.lon }));
    map.setLayer('results', pts);
    if (!shape && pts.length) map.fit(pts);
    const holdOut = h('div', { class: 'out' });
    const actions = h('div', { class: 'actions' },
      may('hold_reads') ? h('button', { type: 'button', onclick: (e) => hold(e.target, holdOut) }, 'Put selected on legal hold') : null,
      res.next_cursor ? h('button', { type: 'button', onclick: () => run(lastQuery, true) }, 'More results') : null,
      may('export_reads') && results.length ? h('button', { type: 'button', onclick: (e) => exportCsv(e.target) },
        exportLabel()) : null);
    // Per-plate counts over what is shown, most-read first (issue 23 item 7).
    const perPlate = new Map();
    for (const r of results) perPlate.set(r.plate, (perPlate.get(r.plate) || 0) + 1);
    const counts = [...perPlate.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const cameraName = new Map(cameras.map((c) => [c.id, c.name]));
    const sortBy = (key, label) => h('button', { type: 'button', class: 'link sort', 'aria-pressed': String(order.key === key),
      title: `Sort by ${label.toLowerCase()}`, onclick: () => { order = { key, desc: order.key === key ? !order.desc : key === 'ts' }; draw(res); } },
      label, order.key === key ? (order.desc ? ' ▼' : ' ▲') : '');
    const shownRows = [...results].sort((a, b) => {
      const va = order.key === 'camera' ? (cameraName.get(a.camera) || a.camera) : a[order.key];
      const vb = order.key === 'camera' ? (cameraName.get(b.camera) || b.camera) : b[order.key];
      const c = String(va ?? '').localeCompare(String(vb ?? ''));
      return order.desc ? -c : c;
    });
    put(out,
      h('p', { class: 'summary' }, total && total.count > results.length
        ? `${results.length.toLocaleString()} of ${countText(total)} reads shown`
        : `${results.length.toLocaleString()} read${results.length === 1 ? '' : 's'}${total ? ' found' : ' shown'}`,
        res.next_cursor ? ' (more to load)' : '',
        res.plates_matched ? ` of ${res.plates_matched} matching plate${res.plates_matched === 1 ? '' : 's'}` : '',
        ` · logged as access ${accessId}`),
      counts.length > 1 ? h('p', { class: 'per-plate' }, 'By plate: ', counts.slice(0, 12).map(([p, n], i) => [i ? ', ' : '', h('span', { class: 'plate' }, p), ` ×${n}`]),
        counts.length > 12 ? `, and ${counts.length - 12} more` : '') : null,
      table([
        ['', (r) => h('input', { type: 'checkbox', 'aria-label': `Select read of ${r.plate} at ${when(r.ts)}`, checked: selected.has(r.read_id),
          onchange: (e) => { if (e.target.checked) selected.add(r.read_id); else selected.delete(r.read_id); } })],
        ['Picture', (r) => thumb(r)],
        [sortBy('plate', 'Plate'), (r) => h('span', { class: 'plate' }, r.plate)],
        ['State', (r) => r.state || ''],
        [sortBy('ts', 'Time'), (r) => when(r.ts)],
        [sortBy('camera', 'Camera'), (r) => (cameraName.has(r.camera) ? h('span', { title: r.camera }, cameraName.get(r.camera)) : r.camera)],
        ['Confidence', (r) => (r.confidence ?? '')],
        ['Place', (r) => (r.lat !== null ? h('button', { type: 'button', class: 'link', onclick: () => { map.select(r.read_id); map.el.scrollIntoView({ block: 'nearest' }); } }, `${r.lat.toFixed(4)}, ${r.lon.toFixed(4)}`) : '')],
      ], shownRows, 'No reads match. The search was still logged.', (r) => ({ id: `read-${r.read_id}` })),
      actions, holdOut);
  }

  // One thumbnail per read, kept across redraws (sorting, more results):
  // each fetch of a picture is an image view in the log.
  const thumbOf = new Map();
  const thumb = (r) => {
    if (!thumbOf.has(r.read_id)) thumbOf.set(r.read_id, readThumb(r, { canView: may('view_images'), canCorrect: may('correct_reads'), accessId: r.access_id, signal, keep: thumbs, holdFor: may('hold_reads') ? holdPurposeNow : null }));
    return thumbOf.get(r.read_id);
  };
  // A hold placed from a read's window is for the case the search names.
  const holdPurposeNow = () => { const v = values(form); return { case_number: v.case_number, offense: v.offense || undefined, reason: v.reason || undefined }; };

  const exportLabel = () => {
    if (!total || total.count <= results.length) return 'Export as CSV';
    return total.at_least ? `Export the newest ${total.count.toLocaleString()} as CSV` : `Export all ${total.count.toLocaleString()} as CSV`;
  };
  // Every match (up to 10,000) leaves as one file: an export access
  // naming each read, recorded as a download with a destroy-by date.
  async function exportCsv(button) {
    if (!lastQuery) return;
    const { cursor, limit, ...search } = lastQuery;
    button.disabled = true;
    try {
      await saveThroughLink({ search_export: { search } });
      flash('The CSV file is downloading. It is logged as an export of every read in it and recorded as a download: destroy it by its destroy-by date (see Records).');
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); } finally { button.disabled = false; }
  }

  async function hold(button, holdOut) {
    const v = values(form);
    if (!selected.size) { put(holdOut, problem({ message: 'Select the reads to hold first (the boxes in the first column).' })); return; }
    button.disabled = true;
    try {
      const held = await api('POST', '/api/v1/holds', { case_number: v.case_number, read_ids: [...selected], offense: v.offense || undefined, reason: v.reason || undefined });
      put(holdOut, h('div', { class: 'notice' }, `Legal hold ${held.id} for case ${held.case_number}: ${held.reads} read${held.reads === 1 ? '' : 's'} kept past retention until the hold is lifted. `,
        may('export_reads') ? h('button', { type: 'button', onclick: (e) => exportEvidence(held, me, e.target) }, 'Export evidence package') : null));
    } catch (err) { put(holdOut, problem(err, 'Not held.')); } finally { button.disabled = false; }
  }

  put(main, ...heading('Search and canvass', 'Find reads by plate, time, camera or area. Every search is an access: it is logged with your name and its purpose before any result is returned.'),
    h('div', { class: 'search-grid' }, form, map.el), out);
  map.setMode('pan');
}

/** "1,234" or "more than 10,000". */
function countText(t) {
  return t.at_least ? `more than ${t.count.toLocaleString()}` : t.count.toLocaleString();
}

/** A read's picture as a button that opens its pictures (and, for those
 * who may, the correction of a misread); blob URLs go into `keep` so the
 * page can release them. */
function readThumb(r, { canView, canCorrect, accessId, signal, keep, holdFor = null }) {
  const open = { canView, canCorrect, accessId, holdFor };
  const box = h('button', { type: 'button', class: 'thumb', 'aria-label': `Open the read of ${r.plate}`, onclick: () => openRead(r, open) });
  if (!r.image_url || !canView) {
    box.textContent = '—';
    // Without a picture the window still holds the read or corrects it.
    if (!canCorrect && !holdFor) box.disabled = true;
    return box;
  }
  imageUrl(r.image_url, signal).then((url) => { keep.push(url); box.append(h('img', { src: url, alt: '' })); }).catch(() => { box.textContent = '!'; });
  return box;
}

/** A dialog with a read's vehicle and plate pictures, and the form that
 * corrects a misread from them (R8.2; issue 23 item 7). */
async function openRead(r, { canView = true, canCorrect = false, accessId = null, holdFor = null } = {}) {
  const body = h('div', { class: 'pictures' });
  const holdOut = h('div', { 'aria-live': 'polite' });
  // Seen in the picture, kept for the case without going back to the list.
  const holdButton = holdFor ? h('button', { type: 'button', onclick: async (e) => {
    e.target.disabled = true;
    try {
      const held = await api('POST', '/api/v1/holds', { ...holdFor(), read_ids: [r.read_id] });
      put(holdOut, h('p', { class: 'notice' }, `On legal hold ${held.id} for case ${held.case_number}: kept past retention until the hold is lifted.`));
    } catch (err) { e.target.disabled = false; put(holdOut, problem(err, 'Not held.')); }
  } }, 'Put this read on legal hold') : null;
  const dlg = h('dialog', { class: 'read-dialog', 'aria-label': `Read of ${r.plate}` },
    h('h2', {}, h('span', { class: 'plate' }, r.plate), ` ${r.state || ''}`),
    h('p', {}, `${when(r.ts)} · camera ${r.camera}${r.lat !== null ? ` · ${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}` : ''}`),
    body,
    holdButton ? h('div', { class: 'actions' }, holdButton, holdOut) : null,
    canCorrect ? correctionForm(r, accessId) : null,
    h('form', { method: 'dialog' }, h('button', { class: 'primary' }, 'Close')));
  const shown = [];
  dlg.addEventListener('close', () => { dlg.remove(); shown.forEach(URL.revokeObjectURL); });
  document.body.append(dlg);
  dlg.showModal();
  if (!canView || !r.image_url) { body.append(h('p', {}, 'This read has no pictures to show.')); return; }
  for (const [url, label] of [[r.image_url, 'Vehicle'], [r.plate_image_url, 'Plate']]) {
    if (!url || (label === 'Plate' && url === r.image_url)) continue;
    try {
      shown.push(await imageUrl(url));
      body.append(h('figure', {}, h('img', { src: shown[shown.length - 1], alt: `${label} picture of ${r.plate}` }), h('figcaption', {}, label)));
    } catch (err) { body.append(problem(err)); }
  }
}

function correctionForm(r, accessId) {
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'correction', 'aria-label': 'Correct a misread' },
    h('h3', {}, 'Correct a misread'),
    h('p', { class: 'hint' }, 'If the picture shows another plate or state, record what it shows. The original is kept, and the correction is logged with your name.'),
    h('div', { class: 'row' },
      field('Plate in the picture', input('plate', { required: true, value: r.plate, autocapitalize: 'characters', spellcheck: 'false' })),
      field('State', input('state', { maxlength: '2', value: r.state || '', autocapitalize: 'characters' }))),
    field('Why', input('reason', { required: true, placeholder: 'the picture shows 8; the camera read B' })),
    h('button', { type: 'submit' }, 'Record correction'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = values(form);
    try {
      const c = await api('POST', `/api/v1/reads/${r.read_id}/correction`, { plate: v.plate, state: v.state, reason: v.reason, access_id: accessId ?? undefined });
      put(out, h('p', { class: 'notice' }, `Corrected: ${c.old_plate} → ${c.new_plate} (correction ${c.id}). The original is kept.`));
    } catch (err) { put(out, problem(err, 'Not corrected.')); }
  });
  return form;
}

// Whoever opens a hold that someone else placed states their own reason
// (logged with the access); the hold's maker opens it under the purpose
// they placed it with. null: the person cancelled.
async function holdPurpose(x, me, what) {
  if (x.created_by === me.username) return {};
  const reason = await ask(`${what} hold ${x.id} (case ${x.case_number}), placed by ${x.created_by}? Your access is logged under your own reason (no personal details beyond the suspect's last name).`,
    { answer: 'Why do you open it?', required: true, yes: what });
  if (!reason) return null;
  return { case_number: x.case_number, offense: x.purpose.offense, reason };
}

async function exportEvidence(x, me, button) {
  const purpose = await holdPurpose(x, me, 'Export');
  if (!purpose) return;
  button.disabled = true;
  try {
    await saveThroughLink({ evidence: { hold_id: x.id, ...(purpose.reason ? { purpose } : {}) } });
    flash(`Evidence package for hold ${x.id} is downloading. Its download is recorded with a destroy-by date.`);
  } catch (err) { flash(`${err.message} (${err.code})`, 'error'); } finally { button.disabled = false; }
}

export async function holdsPage(main, { me, signal }) {
  const may = (r) => me.rights.includes(r);
  const list = h('div', {});
  const shown = h('div', { class: 'results', 'aria-live': 'polite' });
  const thumbs = [];
  const thumbOf = new Map();
  signal.addEventListener('abort', () => thumbs.splice(0).forEach(URL.revokeObjectURL));
  // A hold's reads, a page at a time (each page is a logged access, and
  // each picture shown is an image view): the first page, then more on
  // request.
  async function view(x, button, cursor, earlier = [], purpose = null) {
    purpose = purpose || await holdPurpose(x, me, 'Open');
    if (!purpose) return;
    button.disabled = true;
    try {
      const said = Object.entries(purpose).map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join('');
      const page = await api('GET', `/api/v1/holds/${x.id}/reads?limit=100${cursor ? `&cursor=${cursor}` : ''}${said}`, undefined, { signal });
      if (!cursor) { thumbs.splice(0).forEach(URL.revokeObjectURL); thumbOf.clear(); }
      const reads = earlier.concat(page.results);
      // Earlier pages keep their pictures (no second image view each).
      const picture = (r) => {
        if (!thumbOf.has(r.read_id)) thumbOf.set(r.read_id, readThumb(r, { canView: may('view_images'), canCorrect: may('correct_reads'), accessId: page.access_id, signal, keep: thumbs }));
        return thumbOf.get(r.read_id);
      };
      put(shown,
        h('h2', {}, `Reads kept by hold ${x.id} (case ${x.case_number})`),
        h('p', { class: 'summary' }, `${reads.length} read${reads.length === 1 ? '' : 's'} shown${page.next_cursor ? ', more to load' : ''} · ${page.plates_matched} plate${page.plates_matched === 1 ? '' : 's'} in the hold · logged as access ${page.access_id} under ${purpose.reason ? 'your reason' : 'your purpose from placing it'}`),
        table([
          ['Picture', picture],
          ['Plate', (r) => h('span', { class: 'plate' }, r.plate)],
          ['State', (r) => r.state || ''],
          ['Time', (r) => when(r.ts)],
          ['Camera', (r) => r.camera],
          ['Place', (r) => (r.lat !== null ? `${r.lat.toFixed(4)}, ${r.lon.toFixed(4)}` : '')],
        ], reads, 'This hold keeps no reads.'),
        page.next_cursor ? h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: (e) => view(x, e.target, page.next_cursor, reads, purpose) }, 'More reads')) : null);
      if (!cursor) shown.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      if (err.name !== 'AbortError') put(shown, problem(err, 'Could not open the held reads.'));
    } finally { button.disabled = false; }
  }
  async function load() {
    const res = await api('GET', '/api/v1/holds?include_lifted=true&limit=200', undefined, { signal });
    put(list, table([
      ['Hold', (x) => String(x.id)],
      ['Case', (x) => x.case_number],
      ['Reads', (x) => String(x.reads)],
      ['Placed', (x) => `${when(x.created_at_ms)} by ${x.created_by}`],
      ['Shared with', (x) => (x.shared_with.length ? x.shared_with.join(', ') : '')],
      ['Status', (x) => (x.lifted_at_ms ? `lifted ${when(x.lifted_at_ms)} by ${x.lifted_by}: ${x.lift_reason || ''}` : 'held')],
      ['', (x) => (x.lifted_at_ms ? '' : h('span', { class: 'actions' },
        may('hold_reads') ? h('button', { type: 'button', onclick: (e) => view(x, e.target) }, 'View reads') : null,
        may('export_reads') ? h('button', { type: 'button', onclick: (e) => exportEvidence(x, me, e.target) }, 'Export evidence') : null,
        owns(x) ? h('button', { type: 'button', onclick: () => share(x) }, 'Share') : null,
        owns(x) ? h('button', { type: 'button', onclick: () => lift(x) }, 'Lift') : null))],
    ], res.holds, 'No legal holds. Put reads on hold from the search results.'));
  }
  // Only a hold's maker and the administrator lift or share it.
  const owns = (x) => x.created_by === me.username || me.role === 'administrator';
  async function share(x) {
    const username = await ask(`Share hold ${x.id} (case ${x.case_number}) with a colleague on the case? They may then view and export it, not lift or share it.`, { answer: 'Their username', required: true, yes: 'Share' });
    if (!username) return;
    try { await api('POST', `/api/v1/holds/${x.id}/members`, { username }); flash(`Hold ${x.id} is shared with ${username}.`); load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  async function lift(x) {
    const reason = await ask(`Lift hold ${x.id} (case ${x.case_number})? The reads then age out with the rest.`, { answer: 'Why is it lifted?', required: true, yes: 'Lift hold' });
    if (!reason) return;
    try { await api('DELETE', `/api/v1/holds/${x.id}?reason=${encodeURIComponent(reason)}`); flash(`Hold ${x.id} lifted.`); load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  put(main, ...heading('Legal holds and evidence', 'Reads on hold are kept past the retention period until the hold is lifted. Only the officer who placed a hold, colleagues it is shared with and the administrator see it; each view is logged under the viewer\'s own reason. An evidence package holds the records, the images, a SHA-256 manifest and the chain of custody.'), list, shown);
  await load();
}
