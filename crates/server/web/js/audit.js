// The access log and audits (R4.3, R8.1): who looked up what, when and
// why; whether the hash chain is intact; period reports to download.

import { api } from './api.js';
import { h, put, heading, field, input, select, values, table, when, utcWhen, fields, toUtc, problem, busy, download } from './dom.js';

function quarter(d = new Date()) { return `${d.getUTCFullYear()}Q${Math.floor(d.getUTCMonth() / 3) + 1}`; }

export async function auditPage(main, { signal }) {
  const verify = h('div', { class: 'verify-box', 'aria-live': 'polite' }, 'Checking the hash chain…');
  const log = h('div', {});
  let cursor = null;
  let filter = {};

  async function load(more) {
    const q = new URLSearchParams({ limit: '100' });
    for (const k of ['username', 'category', 'kind', 'case_number']) if (filter[k]) q.set(k, filter[k]);
    if (filter.from) q.set('from', toUtc(filter.from));
    if (filter.to) q.set('to', toUtc(filter.to));
    if (more && cursor) q.set('cursor', String(cursor));
    const res = await api('GET', `/api/v1/audit/log?${q}`, undefined, { signal });
    cursor = res.next_cursor;
    put(log, table([
      ['#', (e) => String(e.seq)],
      ['When', (e) => when(e.ts)],
      ['Who', (e) => `${e.username}${e.role ? ` (${e.role})` : ''}`],
      // The address, and the agency device when there was one.
      ['From', (e) => e.client || ''],
      ['What', (e) => `${e.category} · ${e.kind}`],
      ['Purpose', (e) => (e.purpose ? [e.purpose.case_number, e.purpose.offense, e.purpose.reason].filter(Boolean).join(' · ') : '')],
      // An access names every read it returned (one entry since issue 28;
      // older logs carry the count on a following "result" entry).
      ['Reads', (e) => (e.details && typeof e.details.result_count === 'number' ? String(e.details.result_count) : '')],
      ['Details', (e) => fields(e.details)],
      ['Hash', (e) => h('code', { title: e.hash }, e.hash.slice(0, 12))],
    ], res.entries, 'No entries match.'),
    cursor ? h('button', { type: 'button', onclick: () => load(true) }, 'Older entries') : null);
  }

  const CATEGORIES = [['', 'Any'], ['access', 'access (searches, views, exports)'], ['refused', 'refused requests'], ['auth', 'sign-in and sessions'], ['admin', 'administration'], ['alert', 'alerts'], ['hotlist', 'hot lists'], ['evidence', 'evidence'], ['system', 'system (purges, expiries)']];
  const filterForm = h('form', { class: 'inline', 'aria-label': 'Filter the log' },
    field('Username', input('username', { autocapitalize: 'none' })),
    field('Category', select('category', CATEGORIES, '')),
    field('Kind', input('kind', { placeholder: 'search, signed_in…' })),
    field('Case number', input('case_number')),
    field('From', input('from', { type: 'datetime-local' })),
    field('To', input('to', { type: 'datetime-local' })),
    h('button', { type: 'submit' }, 'Filter'));
  filterForm.addEventListener('submit', (e) => { e.preventDefault(); filter = values(filterForm); busy(filterForm, () => load(false).catch((err) => put(log, problem(err, 'No entries.')))); });

  const reportOut = h('div', { class: 'out' });
  const reportForm = h('form', { class: 'inline', 'aria-label': 'Period report' },
    field('Period', input('period', { value: quarter(), pattern: '[0-9]{4}(Q[1-4]|-[0-9]{2})?', required: true }), 'A quarter like 2026Q3, a month like 2026-08, or a year.'),
    h('button', { type: 'submit', value: 'html' }, 'View'),
    h('button', { type: 'button', onclick: () => fetchReport('csv') }, 'Download CSV'),
    h('button', { type: 'button', onclick: () => fetchReport('html') }, 'Download HTML'));
  reportForm.addEventListener('submit', (e) => { e.preventDefault(); viewReport(values(reportForm).period); });
  async function viewReport(period) {
    try {
      const r = await api('GET', `/api/v1/audit/report?period=${encodeURIComponent(period)}&format=json`);
      put(reportOut, summary(r));
      reportOut.scrollIntoView({ block: 'nearest' });
    } catch (err) { put(reportOut, problem(err, 'No report.')); }
    loadReports();
  }
  async function fetchReport(format, period = values(reportForm).period) {
    try {
      const { blob, filename } = await api('GET', `/api/v1/audit/report?period=${encodeURIComponent(period)}&format=${format}`, undefined, { blob: true, filename: `audit-${period}.${format}` });
      download(blob, filename);
    } catch (err) { put(reportOut, problem(err, 'No report.')); }
    loadReports();
  }

  // Reports made before: each period again, as it stands now.
  const reports = h('div', { 'aria-live': 'polite' });
  let showAll = false;
  async function loadReports() {
    try {
      const res = await api('GET', '/api/v1/audit/reports', undefined, { signal });
      const rows = showAll ? res.reports : res.reports.slice(0, 10);
      put(reports, table([
        ['Period', (r) => r.period],
        ['Generated', (r) => when(r.generated_at)],
        ['By', (r) => r.generated_by],
        ['', (r) => h('span', { class: 'actions' },
          h('button', { type: 'button', onclick: () => viewReport(r.period), 'aria-label': `View the report for ${r.period}` }, 'View'),
          h('button', { type: 'button', onclick: () => fetchReport('csv', r.period), 'aria-label': `Download the report for ${r.period} as CSV` }, 'CSV'),
          h('button', { type: 'button', onclick: () => fetchReport('html', r.period), 'aria-label': `Download the report for ${r.period} as HTML` }, 'HTML'))],
      ], rows, 'No report has been generated yet.'),
      rows.length < res.reports.length ? h('button', { type: 'button', class: 'link', onclick: () => { showAll = true; loadReports(); } }, `Show all ${res.reports.length}`) : null);
    } catch (err) { if (err.name !== 'AbortError') put(reports, problem(err, 'The reports made before cannot be listed.')); }
  }

  put(main, ...heading('Audit', 'The access log: every search, view, export and administrative change, each entry chained to the one before by SHA-256.'),
    verify, h('h2', {}, 'Period report'), reportForm, reportOut,
    h('h3', {}, 'Reports made before'), h('p', {}, 'Each generation of a report is kept as an audit document. View or download a period again: it is made afresh from the log as it stands now.'), reports,
    h('h2', {}, 'Access log'), filterForm, log);
  const [v] = await Promise.all([api('GET', '/api/v1/audit/verify', undefined, { signal }), load(false), loadReports()]);
  showVerify(verify, v);
}

// The chain's state, an alarm raised at start (with the form that
// acknowledges it), and the newest signed checkpoint to keep elsewhere
// or to check a saved one against (issue 22 finding 2).
function showVerify(box, v) {
  const parts = [];
  if (v.alarm) {
    const ack = h('form', { class: 'inline', 'aria-label': 'Acknowledge the alarm' },
      field('What was found and done', input('note', { required: true, maxlength: '2000' })),
      h('button', { type: 'submit' }, 'Acknowledge and sign a new checkpoint'));
    ack.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(ack, async () => {
        try {
          await api('POST', '/api/v1/audit/checkpoint', { acknowledge_alarm: values(ack).note });
          showVerify(box, await api('GET', '/api/v1/audit/verify'));
        } catch (err) { ack.append(problem(err, 'Not acknowledged.')); }
      });
    });
    parts.push(h('div', { class: 'refusal', role: 'alert' },
      h('h2', {}, 'The audit log failed its check when the server started'),
      h('p', {}, `${v.alarm.problem} (since ${when(v.alarm.since)}, entry ${v.alarm.entry}). No checkpoint is signed until this is acknowledged.`),
      ack));
  } else if (v.ok) {
    parts.push(h('p', { class: 'notice' }, `Hash chain intact: ${v.entries} entries, head ${v.head.slice(0, 16)}…`));
  } else {
    parts.push(h('div', { class: 'refusal', role: 'alert' }, h('h2', {}, 'The access log has been altered'), h('p', {}, `First bad entry: ${v.first_bad}. ${v.problem || ''}`)));
  }
  const out = h('div', { 'aria-live': 'polite' });
  const file = h('input', { type: 'file', accept: 'application/json,.json', 'aria-label': 'A checkpoint saved earlier' });
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    try {
      const p = await api('POST', '/api/v1/audit/verify', JSON.parse(await f.text()));
      put(out, p.ok
        ? h('p', { class: 'notice' }, `The log extends the checkpoint of entry ${p.checkpoint.entries} signed ${when(p.checkpoint.time)} by key ${p.checkpoint.public_key.slice(0, 16)}… (compare it with the agency's copy).${p.note ? ` ${p.note}` : ''}`)
        : h('div', { class: 'refusal', role: 'alert' }, h('h2', {}, 'The log does not extend that checkpoint'), h('p', {}, p.problem || '')));
    } catch (err) { put(out, problem(err, 'Not checked.')); }
  });
  if (v.checkpoint) {
    const c = v.checkpoint;
    parts.push(h('p', {}, `Newest signed checkpoint: entry ${c.entries}, signed ${when(c.time)}, public key `, h('code', {}, c.public_key), '. ',
      h('button', { type: 'button', onclick: () => download(new Blob([JSON.stringify(c, null, 2)], { type: 'application/json' }), `platekeeper-checkpoint-${c.entries}.json`) }, 'Download checkpoint'),
      ' Keep it where the server\'s administrators cannot change it.'));
  }
  parts.push(h('p', {}, h('label', {}, 'Check the log against a checkpoint saved earlier: ', file)), out);
  put(box, ...parts);
}

/**
 * The period report as a report (issue 23 item 9): what needs attention
 * first, then the totals, then the period's records; times in UTC, as in
 * the downloaded report.
 */
function summary(r) {
  const FINDINGS = [
    ['unqualified_accesses', 'Accesses without current training or approval'],
    ['purposes_short', 'Purposes that fell short (refused)'],
    ['after_hours', 'Accesses outside working hours'],
    ['lockouts', 'Accounts locked and unlocked'],
    ['device_refusals', 'Plate data refused: not an agency device'],
    ['policy_changes', 'Changes of the agency\'s policy'],
  ];
  const RECORDS = [
    ['hotlist_changes', 'Hot-list changes'],
    ['shares', 'Sharing with other agencies'],
    ['purges', 'Purge runs'],
    ['corrections', 'Corrections of misreads'],
  ];
  const findingTable = (sec) => table([
    ['#', (f) => String(f.seq)],
    ['When (UTC)', (f) => utcWhen(f.ts)],
    ['Who', (f) => f.username],
    ['What', (f) => f.kind.replace(/_/g, ' ')],
    ['Details', (f) => fields(f.detail)],
  ], sec.items, 'None.');
  const attention = [];
  if (r.log_alarm) attention.push(h('div', { class: 'refusal', role: 'alert' }, h('h4', {}, 'The audit log failed its check'), h('p', {}, r.log_alarm)));
  if (r.at_rest && !r.at_rest.encrypted) attention.push(h('div', { class: 'refusal', role: 'alert' }, h('h4', {}, 'The data is not encrypted at rest'), h('p', {}, 'A copy of the data folder shows every plate, place and time. Stop the server and run platekeeper keys encrypt.')));
  if (r.purge_compliance && !r.purge_compliance.compliant) attention.push(h('div', { class: 'refusal', role: 'alert' }, h('h4', {}, 'Retention is not being applied'), fields(r.purge_compliance)));
  for (const [k, title] of FINDINGS) {
    const sec = r[k];
    if (sec && sec.count > 0) attention.push(h('section', { class: 'finding' }, h('h4', {}, `${title}: ${sec.count}`), findingTable(sec), sec.count > sec.items.length ? h('p', {}, `The first ${sec.items.length} of ${sec.count} are listed; the downloaded report has them all.`) : null));
  }
  if (r.unusual_volume && r.unusual_volume.length) {
    attention.push(h('section', { class: 'finding' }, h('h4', {}, `Unusual volume: ${r.unusual_volume.length} day${r.unusual_volume.length === 1 ? '' : 's'}`),
      table([['Who', (u) => u.username], ['Day', (u) => u.day], ['Accesses', (u) => String(u.accesses)], ['Their median day', (u) => String(u.median_daily)]], r.unusual_volume)));
  }
  const clean = FINDINGS.filter(([k]) => r[k] && r[k].count === 0).map(([, t]) => t.toLowerCase());
  return h('div', { class: 'card report' },
    h('h3', {}, `Report for ${r.period.label}`),
    h('p', {}, `${utcWhen(r.from)} to ${utcWhen(r.to)}; generated ${utcWhen(r.generated_at)}.`),
    h('h4', {}, 'Needs attention'),
    attention.length ? attention : h('p', { class: 'notice' }, 'Nothing in this period needs attention.'),
    clean.length ? h('p', {}, `None found: ${clean.join('; ')}.`) : null,
    h('h4', {}, 'Totals'),
    h('dl', { class: 'figures' },
      h('dt', {}, 'Log entries examined'), h('dd', {}, String(r.entries_examined)),
      h('dt', {}, 'Accesses to plate data'), h('dd', {}, String(r.accesses)),
      h('dt', {}, 'Encryption at rest'), h('dd', {}, r.at_rest ? (r.at_rest.encrypted ? `on (key ${r.at_rest.key_id})` : 'OFF') : '—'),
      h('dt', {}, 'Retention'), h('dd', {}, r.purge_compliance ? (r.purge_compliance.compliant ? 'applied on time' : 'NOT applied on time') : '—'),
      RECORDS.map(([k, t]) => [h('dt', {}, t), h('dd', {}, String(r[k] ? r[k].count : 0))])),
    table([
      ['User', (u) => u.username], ['Accesses', (u) => String(u.accesses)], ['Refused', (u) => String(u.refused)],
      ['After hours', (u) => String(u.after_hours)], ['Unqualified', (u) => String(u.unqualified)],
      ['Median day', (u) => String(u.median_daily)], ['Busiest day', (u) => (u.busiest_day ? `${u.busiest_day} (${u.busiest_day_accesses})` : '—')],
    ], r.users || [], 'No accesses in this period.'),
    (r.devices || []).length ? table([['Device', (d) => d.device], ['Accesses', (d) => String(d.accesses)]], r.devices) : null,
    (r.notes || []).length ? [h('h4', {}, 'Notes'), h('ul', {}, r.notes.map((n) => h('li', {}, n)))] : null,
    h('p', {}, 'Download the CSV or HTML report for every item.'));
}
