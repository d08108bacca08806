// Records (issue 23 item 8): the records duties of the ALPR
// Administrator on one page — copies that left the system until their
// destruction is recorded (R6.3), public-records requests (R7.4, R7.5),
// corrections of misreads (R8.2) and the retention purge (R6.1). Each
// section loads on its own, so one that fails says so and the others
// still show.

import { api } from './api.js';
import { h, put, field, input, table, when, flash, submit, ask, problem, busy } from './dom.js';

// What each kind of download is, and what its reference number names.
const KIND = { evidence: 'Evidence package, hold', sharing_export: 'Sharing export, request', search_export: 'Search results (CSV), access' };
const CLASSES = {
  reads: 'Plate reads', images: 'Pictures', hotlists: 'Hot-list entries and lists', access_log: 'Access-log entries',
  audit_documents: 'Audit documents', downloads: 'Download records',
};
const className = (c) => CLASSES[c] || c.replace(/_/g, ' ');
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function size(bytes) {
  if (bytes >= 1_048_576) return `${(bytes / 1_048_576).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

/** A section that shows its own failure rather than the page's. */
function section(id, title) {
  const el = h('section', { 'aria-labelledby': `${id}-h`, class: 'records-part' });
  const fail = (err) => { if (err.name !== 'AbortError') put(el, h('h2', { id: `${id}-h` }, title), problem(err, `${title} cannot be shown.`)); };
  return { el, fail };
}

export async function recordsPage(main, { me, signal }) {
  const dl = section('downloads', 'Downloads and exports');
  const prr = h('section', { 'aria-labelledby': 'prr-h', class: 'records-part' });
  const cor = section('corrections', 'Corrections of misreads');
  const pur = h('section', { 'aria-labelledby': 'purge-h', class: 'records-part' });

  // Copies outside the system: overdue ones first (all of them, from
  // their own query), then the newest of the rest.
  async function downloads() {
    const [late, all] = await Promise.all([
      api('GET', '/api/v1/downloads?overdue=true&limit=500', undefined, { signal }),
      api('GET', '/api/v1/downloads?limit=200', undefined, { signal }),
    ]);
    const rows = [...late.downloads, ...all.downloads.filter((d) => !d.overdue)];
    const count = late.downloads.length;
    put(dl.el, h('h2', { id: 'downloads-h' }, 'Downloads and exports'),
      h('p', {}, 'Every evidence package, sharing export and export of search results is a copy of plate data outside the system. Whoever holds it must destroy it by its destroy-by date; record here how and when it was destroyed.'),
      count
        ? h('div', { class: 'refusal', role: 'alert' }, h('strong', {}, `Overdue: ${plural(count, 'copy', 'copies')} past the destroy-by date with no destruction recorded.`),
          ' Find out from the person named whether the copy was destroyed, then record it; the audit report lists overdue copies.')
        : h('p', { class: 'notice' }, 'No copy is overdue: every copy past its destroy-by date has its destruction recorded.'),
      table([
        ['No.', (d) => String(d.id)],
        ['What', (d) => [`${KIND[d.kind] || d.kind} ${d.ref_id}`, h('br'), h('small', {}, `${d.file_name} · ${size(d.bytes)} · ${plural(d.reads, 'read')}`)]],
        ['Made by', (d) => [d.username, h('br'), h('small', {}, when(d.created_at))]],
        ['Destroy by', (d) => [when(d.destroy_by), d.overdue ? [' ', h('span', { class: 'tag overdue' }, 'Overdue')] : null]],
        ['Destruction', (d) => (d.destroyed_at ? [`${when(d.destroyed_at)} by ${d.destroyed_by}`, h('br'), h('small', {}, d.destruction_note || '')] : 'not recorded')],
        ['', (d) => (d.destroyed_at ? '' : h('button', { type: 'button', class: d.overdue ? 'primary' : null, onclick: () => destroyed(d) }, 'Record destruction'))],
      ], rows, 'Nothing has been downloaded or exported.', (d) => ({ class: d.overdue ? 'overdue' : d.destroyed_at ? 'done' : null })),
      all.next_cursor ? h('p', { class: 'empty' }, `The newest ${all.downloads.length} are listed, with every overdue one.`) : null);
  }
  async function destroyed(d) {
    const note = await ask(`Record that download ${d.id} (${d.file_name}) was destroyed?`,
      { answer: 'How, when and by whom it was destroyed', required: true, yes: 'Record destruction' });
    if (!note) return;
    try {
      await api('POST', `/api/v1/downloads/${d.id}/destroyed`, { note });
      flash(`Destruction of download ${d.id} recorded.`);
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
    downloads().catch(dl.fail);
  }

  // Public-records requests are recorded and routed, never answered here.
  const prrList = h('div', {});
  const prrOut = h('div', { class: 'out', 'aria-live': 'polite' });
  const prrForm = h('form', { class: 'card' }, h('h3', {}, 'Record a public-records request'),
    h('div', { class: 'row' },
      field('Requested by', input('requester', { required: true, maxlength: '200' })),
      field('Organisation', input('organisation', { maxlength: '200' }), 'Newspaper, firm or group, if any.'),
      field('Received on', input('received_on', { type: 'date', value: new Date().toISOString().slice(0, 10) }))),
    field('What is asked for', h('textarea', { name: 'description', required: true, rows: '3', maxlength: '2000' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Record request')), prrOut);
  submit(prrForm, prrOut, 'Not recorded.', async (v) => {
    const r = await api('POST', '/api/v1/records-requests', { requester: v.requester, organisation: v.organisation || undefined, received_on: v.received_on || undefined, description: v.description });
    prrForm.reset();
    put(prrOut, h('p', { class: 'notice' }, `Request ${r.request.id} recorded. ${r.note}`));
    await requests();
  });
  async function requests() {
    const res = await api('GET', '/api/v1/records-requests', undefined, { signal });
    put(prrList, table([
      ['No.', (r) => String(r.id)],
      ['Received', (r) => r.received_on],
      ['From', (r) => (r.organisation ? `${r.requester}, ${r.organisation}` : r.requester)],
      ['Asked for', (r) => r.description],
      ['Routed to', (r) => r.routed_to],
      ['Recorded', (r) => `${r.recorded_by}, ${when(r.recorded_at)}`],
    ], res.requests, 'No public-records requests recorded.'));
  }
  put(prr, h('h2', { id: 'prr-h' }, 'Public-records requests'),
    h('p', {}, 'Requests from the public, the press or anyone outside law enforcement. Record each one: it is logged and routed to the agency\'s records process. It is never answered from ALPR data — plate reads are confidential and this system does not release them to the public.'),
    prrList, me.rights.includes('manage_sharing') ? prrForm : null);

  async function corrections() {
    const res = await api('GET', '/api/v1/corrections', undefined, { signal });
    const rows = [...res.corrections].sort((a, b) => (a.corrected_at < b.corrected_at ? 1 : a.corrected_at > b.corrected_at ? -1 : b.id - a.id));
    const plate = (p, s) => [h('span', { class: 'plate' }, p), s ? ` ${s}` : ''];
    put(cor.el, h('h2', { id: 'corrections-h' }, 'Corrections of misreads'),
      h('p', {}, 'A misread is corrected from the read\'s picture window on the Search page: find the read, open it, and use "Record correction". Every correction is listed here, newest first, and in the audit report.'),
      table([
        ['Corrected', (c) => when(c.corrected_at)],
        ['Read as', (c) => plate(c.old_plate, c.old_state)],
        ['Corrected to', (c) => plate(c.new_plate, c.new_state)],
        ['Why', (c) => c.reason],
        ['By', (c) => c.corrected_by],
        ['Read', (c) => [when(c.read_ts), h('br'), h('small', {}, h('code', {}, c.read_id))]],
      ], rows, 'No read has been corrected.'));
  }

  // The purge: past runs, the next, what is due now, and a run now. The
  // button works even when the summary cannot be loaded.
  const purgeInfo = h('div', {});
  const purgeOut = h('div', { 'aria-live': 'polite' });
  const purgeForm = h('form', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Run purge now'));
  purgeForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!(await ask('Run the purge now? Everything past its retention period is deleted for good, except reads on legal hold. It is logged with your name.', { yes: 'Run purge now', danger: true }))) return;
    busy(purgeForm, async () => {
      try {
        const r = await api('POST', '/api/v1/purge');
        const removed = r.classes.reduce((n, c) => n + c.count, 0);
        put(purgeOut, h('p', { class: 'notice' }, removed || r.days_removed.length
          ? `Purge done at ${when(r.at)}: ${what(r.classes)}${r.days_removed.length ? `; day files removed: ${r.days_removed.join(', ')}` : ''}.`
          : `Purge run at ${when(r.at)}: nothing was past its retention period, so nothing was removed.`));
        await Promise.all([purge().catch(failPurge), downloads().catch(dl.fail)]);
      } catch (err) { put(purgeOut, problem(err, 'The purge did not run.')); }
    });
  });
  const failPurge = (err) => { if (err.name !== 'AbortError') put(purgeInfo, problem(err, 'The purge summary cannot be shown.')); };
  async function purge() {
    const s = await api('GET', '/api/v1/purge', undefined, { signal });
    const due = s.due;
    const dueRows = due.classes.filter((c) => c.count > 0);
    put(purgeInfo,
      h('p', {}, h('strong', {}, 'Next daily run: '), s.next_run_before ? `between ${when(s.next_run_after)} and ${when(s.next_run_before)}.` : `after ${when(s.next_run_after)}.`),
      h('h3', {}, 'Due now'),
      dueRows.length || due.days_removed.length
        ? [table([
          ['What', (c) => className(c.class)], ['Items', (c) => String(c.count)],
          ['Kept', (c) => (c.retention_days !== undefined ? `${c.retention_days} days` : '')], ['Older than', (c) => when(c.cutoff)],
        ], dueRows, 'Nothing else is due.'),
        due.days_removed.length ? h('p', {}, `Day files of reads due: ${due.days_removed.join(', ')}.`) : null]
        : h('p', { class: 'notice' }, 'Nothing is past its retention period now.'),
      h('p', {}, [
        `Reads kept because a legal hold names them: ${due.held_reads_kept}.`,
        due.plates_forgotten ? ` Plates seen only in the days due: ${due.plates_forgotten}.` : '',
        due.overdue_downloads ? ` Copies overdue for destruction: ${due.overdue_downloads} (see above).` : '',
      ].join('')),
      h('h3', {}, 'Past runs'),
      table([
        ['#', (r) => String(r.seq)],
        ['When', (r) => when(r.at)],
        ['By', (r) => (r.by === 'system:retention' ? 'daily run' : r.by)],
        ['Removed', (r) => what(run(r).classes)],
        ['Day files', (r) => (run(r).days_removed || []).join(', ') || 'none'],
      ], s.runs, 'No purge has removed anything yet (a run with nothing due changes nothing and is not listed).'));
  }
  put(pur, h('h2', { id: 'purge-h' }, 'Retention purge'),
    h('p', {}, 'The server applies the retention periods set on the Policy page once a day: data past its period is deleted, except reads on legal hold. You can also run it now.'),
    purgeInfo, purgeForm, purgeOut);

  put(main, h('h1', {}, 'Records'),
    h('p', { class: 'lead' }, 'Copies that left the system, public-records requests, corrections of misreads, and the retention purge. Everything recorded here is logged with your name.'),
    dl.el, prr, cor.el, pur);
  const canCorrections = me.rights.includes('read_audit_log');
  if (!canCorrections) put(cor.el, h('h2', { id: 'corrections-h' }, 'Corrections of misreads'), h('p', { class: 'empty' }, 'Your role cannot see the list of corrections (it needs the audit right).'));
  await Promise.all([
    downloads().catch(dl.fail),
    requests().catch((err) => { if (err.name !== 'AbortError') put(prrList, problem(err, 'The requests cannot be shown.')); }),
    canCorrections ? corrections().catch(cor.fail) : null,
    purge().catch(failPurge),
  ]);
}

/** A purge run's details: the logged entry's `details`, or the run itself. */
function run(r) { return r.details && typeof r.details === 'object' ? r.details : r; }

/** `Plate reads 120, Pictures 30` from a purge's classes. */
function what(classes) {
  const done = (classes || []).filter((c) => c.count > 0);
  return done.length ? done.map((c) => `${className(c.class)} ${c.count}`).join(', ') : 'nothing';
}
