// Hot lists (R3): the lists, their entries, a hand-entered (possibly
// partial) plate, and a file import with its report.

import { api } from './api.js';
import { h, put, heading, field, input, select, values, table, when, problem, busy, flash, submit, ask } from './dom.js';

const KINDS = [['stolen_vehicle', 'Stolen vehicle'], ['stolen_plate', 'Stolen plate'], ['wanted', 'Wanted'], ['missing_person', 'Missing person'], ['amber', 'AMBER alert'], ['warrant', 'Warrant'], ['agency', 'Agency list']];

export async function hotlistsPage(main, { me, rest, signal }) {
  const manage = me.rights.includes('manage_hot_lists');
  const id = rest[0];
  if (id) return listPage(main, id, manage, signal);
  const res = await api('GET', '/api/v1/hotlists', undefined, { signal });
  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card' },
    h('h2', {}, 'New list'),
    h('div', { class: 'row' },
      field('Name', input('name', { required: true })),
      field('Kind', select('kind', KINDS, 'stolen_vehicle')),
      field('Keep entries (days)', input('retention_days', { type: 'number', min: '1', max: '365', value: '30', required: true }))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'fuzzy' }), ' Alert on common misreads too'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Create list')), out);
  submit(form, out, 'Not created.', async (v) => {
    const list = await api('POST', '/api/v1/hotlists', { name: v.name, kind: v.kind, retention_days: Number(v.retention_days), fuzzy: v.fuzzy });
    location.hash = `#/hotlists/${list.id}`;
  });
  put(main, ...heading('Hot lists', 'Reads are checked against every list as they arrive; a hit raises an alert.'),
    table([
      ['List', (l) => h('a', { href: `#/hotlists/${l.id}` }, l.name)],
      ['Kind', (l) => l.kind.replace(/_/g, ' ')],
      ['Entries', (l) => String(l.entries)],
      ['Kept', (l) => `${l.retention_days} days`],
      ['Misreads', (l) => (l.fuzzy ? 'yes' : 'no')],
      ['Updated', (l) => when(l.updated_at_ms)],
    ], res.hotlists, 'No hot lists yet.'),
    manage ? form : null);
}

const describe = (l) => `${l.kind.replace(/_/g, ' ')} · ${l.entries} entries · entries kept ${l.retention_days} days${l.fuzzy ? ' · alerts on misreads' : ''}`;

async function listPage(main, id, manage, signal) {
  const list = await api('GET', `/api/v1/hotlists/${encodeURIComponent(id)}`, undefined, { signal });
  const entries = h('div', {});
  const lead = h('p', { class: 'lead' }, describe(list));
  let cursor = null;
  let plate = '';
  async function load(more) {
    if (!more) {
      // The count in the heading follows additions, removals and imports.
      api('GET', `/api/v1/hotlists/${list.id}`, undefined, { signal }).then((l) => { lead.textContent = describe(l); }).catch(() => {});
    }
    const q = new URLSearchParams({ limit: '200' });
    if (plate) q.set('plate', plate);
    if (more && cursor) q.set('cursor', cursor);
    const res = await api('GET', `/api/v1/hotlists/${list.id}/entries?${q}`, undefined, { signal });
    cursor = res.next_cursor;
    put(entries, plate ? h('p', { class: 'summary', role: 'status' }, res.entries.length
      ? `Entries whose plate contains ${plate}${cursor ? ' (the first 200; Next page shows more)' : `: ${res.entries.length}`}.`
      : `No entry's plate contains ${plate}.`) : null,
    table([
      ['Plate', (x) => h('span', { class: 'plate' }, x.plate)],
      ['State', (x) => x.state || ''],
      ['Reason', (x) => x.reason],
      ['Case', (x) => x.case_number || ''],
      ['Source', (x) => x.source],
      ['Entered', (x) => `${when(x.entered_at_ms)} by ${x.entered_by}`],
      ['Expires', (x) => when(x.expires_at_ms)],
      ['', (x) => (manage ? h('button', { type: 'button', onclick: () => remove(x) }, 'Remove') : '')],
    ], res.entries, plate ? 'No entries match.' : 'This list has no entries.'),
    cursor ? h('button', { type: 'button', onclick: () => load(true) }, 'Next page') : null);
  }
  async function remove(x) {
    const reason = await ask(`Remove ${x.plate} from ${list.name}?`, { answer: 'Why is it removed?', required: true, yes: 'Remove', danger: true });
    if (!reason) return;
    try { await api('DELETE', `/api/v1/hotlists/${list.id}/entries/${x.id}?reason=${encodeURIComponent(reason)}`); flash(`${x.plate} removed.`); load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }

  const addOut = h('div', { class: 'out' });
  const add = h('form', { class: 'card' },
    h('h2', {}, 'Add a plate'),
    h('div', { class: 'row' },
      field('Plate', input('plate', { required: true, autocapitalize: 'characters', placeholder: '8DEF456 or 7AB?12*' }), 'A partial plate takes ? (one character) and * (any run).'),
      field('State', input('state', { maxlength: '2', placeholder: 'CA' })),
      field('Case number', input('case_number', { placeholder: '26-000101' }))),
    h('div', { class: 'row' },
      field('Reason', input('reason', { required: true, placeholder: 'stolen vehicle (10851 VC)' })),
      field('Expires', input('expires_at', { type: 'date' }), 'Hand-entered plates last at most 30 days unless the administrator allows longer.')),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Add plate')), addOut);
  submit(add, addOut, 'Not added.', async (v) => {
    const entry = await api('POST', `/api/v1/hotlists/${list.id}/entries`, {
      plate: v.plate, state: v.state || undefined, reason: v.reason, case_number: v.case_number || undefined,
      expires_at: v.expires_at ? `${v.expires_at}T23:59:59Z` : undefined,
    });
    put(addOut, h('p', { class: 'notice' }, `${entry.plate} added; it expires ${when(entry.expires_at_ms)}.`));
    add.reset();
    load();
  });

  const importOut = h('div', { class: 'out' });
  const imp = h('form', { class: 'card' },
    h('h2', {}, 'Import a file'),
    h('div', { class: 'row' },
      field('File', h('input', { type: 'file', name: 'file', required: true, accept: '.csv,.txt,text/plain,text/csv' })),
      field('Format', select('format', [['csv', 'CSV (plate,state,reason,case_number,expires_at)'], ['doj', 'California DOJ fixed-width'], ['ncic', 'NCIC fixed-width']], 'csv')),
      field('Source', input('source', { placeholder: 'ca-doj-svs', pattern: '[A-Za-z0-9._-]{1,40}' }), 'Letters, digits, . _ - (names the feed; replacing works per source).')),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'replace_all' }), ' Replace this source\'s entries (entries not in the file are removed)'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Import')), importOut);
  imp.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = values(imp);
    const file = imp.elements.file.files[0];
    if (!file) return;
    busy(imp, async () => {
      try {
        const q = new URLSearchParams({ format: v.format, replace_all: String(v.replace_all) });
        if (v.source) q.set('source', v.source);
        const r = await api('POST', `/api/v1/hotlists/${list.id}/import?${q}`, file, { type: 'text/plain' });
        put(importOut, report(r));
        load();
      } catch (err) { put(importOut, problem(err, 'Not imported.')); }
    });
  });

  // A list of 100,000 entries is searched on the server, not paged through.
  const find = h('form', { class: 'inline', role: 'search', 'aria-label': 'Search this list' },
    field('Plate contains', input('plate', { autocapitalize: 'characters', placeholder: '7ABC', maxlength: '20' }), 'Part of a plate: 7ABC finds 7ABC123 and 17ABC9.'),
    h('button', { type: 'submit' }, 'Find'),
    h('button', { type: 'button', onclick: () => { find.reset(); plate = ''; load(false).catch((err) => put(entries, problem(err, 'No entries.'))); } }, 'Show all'));
  find.addEventListener('submit', (e) => {
    e.preventDefault();
    plate = values(find).plate.toUpperCase().replace(/[\s-]/g, '');
    busy(find, () => load(false).catch((err) => put(entries, problem(err, 'No entries.'))));
  });

  put(main, h('p', {}, h('a', { href: '#/hotlists' }, '← All hot lists')),
    h('h1', {}, list.name), lead,
    manage ? h('div', { class: 'two' }, add, imp) : null, h('h2', {}, 'Entries'), find, entries);
  await load();
}

function report(r) {
  return h('div', { class: r.applied ? 'notice' : 'problem', role: 'status' },
    h('p', {}, r.applied ? `Imported from ${r.source}: ${r.added} added, ${r.removed} removed, ${r.unchanged} unchanged, ${r.duplicates} duplicate lines, ${r.invalid} invalid lines.`
      : `Nothing was changed: ${r.refused || 'the file was refused'}.`),
    r.problems && r.problems.length ? h('ul', { class: 'problems' }, r.problems.slice(0, 50).map((p) => h('li', {}, `line ${p.line}: ${p.message}`)),
      r.problems.length > 50 ? h('li', {}, `… and ${r.problems.length - 50} more`) : null) : null);
}
