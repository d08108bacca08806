// Sharing with other agencies (R7): the agencies, written requests and
// the written request itself on file, the administrator's approve or
// deny, transfers made outside the system, and the register of all that
// was shared. California law allows sharing only with California public
// agencies; the server refuses the rest and the refusal is shown as it
// gives it.

import { api, saveThroughLink } from './api.js';
import { h, put, field, input, select, table, when, flash, submit, ask, problem, download, heading, toUtc } from './dom.js';

const KINDS = [['ca_public', 'California public agency'], ['federal', 'Federal agency'], ['out_of_state', 'Out-of-state agency'], ['private', 'Private entity']];
const METHODS = [['email', 'E-mail'], ['portable_media', 'Portable media (USB drive, disc)'], ['other', 'Other']];
const METHOD_LABEL = { export: 'Export from this system', ...Object.fromEntries(METHODS) };
const DOCUMENT_TYPES = 'application/pdf,image/*,.pdf';
const MAX_DOCUMENT = 10 * 1024 * 1024;

/** What to tell the administrator for each refusal of a decision. */
const REFUSALS = {
  sharing_refused: ['cannot be approved', 'Civil Code § 1798.90.55(b): ALPR information may be shared only with California public agencies. Deny the request and tell the requester.'],
  document_required: ['cannot be approved yet', 'The agency\'s written request is not on file. Attach it (a PDF or a scan) with "Attach written request" in the request\'s row, then approve again.'],
  request_decided: ['was already decided', 'Someone decided this request meanwhile; the list now shows the decision.'],
};

/** A file as the API takes a document: `{name, media_type, content_base64}`. */
export function documentBody(file) {
  if (file.size > MAX_DOCUMENT) {
    return Promise.reject(Object.assign(new Error(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; a written request may be at most 10 MB. Scan it at a lower resolution.`), { code: 'document_too_large' }));
  }
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({
      name: file.name,
      media_type: file.type || 'application/octet-stream',
      content_base64: String(reader.result).replace(/^data:[^,]*,/, ''),
    });
    reader.onerror = () => reject(Object.assign(new Error(`${file.name} could not be read.`), { code: 'unreadable_file' }));
    reader.readAsDataURL(file);
  });
}

export async function sharingPage(main, { signal }) {
  const agencies = h('section', {});
  const requests = h('section', {});
  const register = h('section', { 'aria-labelledby': 'register-h' });
  const decisionOut = h('div', { class: 'out', 'aria-live': 'polite' });
  let known = [];

  async function load() {
    const [ag, rq] = await Promise.all([
      api('GET', '/api/v1/agencies', undefined, { signal }),
      api('GET', '/api/v1/sharing/requests?limit=200', undefined, { signal }),
    ]);
    known = ag.agencies;
    put(agencies, h('h2', {}, 'Agencies'), table([
      ['Agency', (a) => a.name], ['Kind', (a) => (KINDS.find(([k]) => k === a.kind) || [, a.kind])[1]], ['State', (a) => a.state],
      ['May receive data', (a) => h('span', { class: `tag ${a.may_receive ? 'active' : 'suspended'}` }, a.may_receive ? 'yes' : 'no')],
    ], known, 'No agencies recorded.'));
    agencySelect.replaceChildren(...known.map((a) => h('option', { value: String(a.id) }, a.name)));
    const sent = rq.requests.filter((r) => r.status === 'approved' || r.status === 'fulfilled');
    transferRequest.replaceChildren(...sent.map((r) => h('option', { value: String(r.id) }, `${r.id}: ${r.agency_name} (${r.requester_name})`)));
    transferForm.hidden = !sent.length;
    transferNone.hidden = !!sent.length;
    put(requests, h('h2', {}, 'Requests'), table([
      ['No.', (r) => String(r.id)],
      ['From', (r) => `${r.requester_name}, ${r.agency_name}`],
      ['Purpose', (r) => r.purpose],
      ['Case', (r) => r.case_number || ''],
      ['Received', (r) => r.received_on],
      ['Written request', (r) => paper(r)],
      ['Status', (r) => h('span', { class: `tag ${r.status}` }, r.status)],
      ['Decision', (r) => (r.decided_by ? `${r.decided_by}, ${when(r.decided_at)}${r.decision_note ? `: ${r.decision_note}` : ''}` : '')],
      ['', (r) => h('span', { class: 'actions' },
        r.status === 'pending' ? [
          h('button', { type: 'button', class: 'primary', onclick: () => decide(r, 'approve') }, 'Approve'),
          h('button', { type: 'button', onclick: () => decide(r, 'deny') }, 'Deny')] : null,
        r.status === 'approved' || r.status === 'fulfilled' ? h('button', { type: 'button', onclick: (e) => exportReads(r, e.target) }, 'Export data') : null)],
    ], rq.requests, 'No sharing requests.'));
  }

  // The written request on file (to download), or the way to attach it.
  function paper(r) {
    if (r.document_name) {
      return h('button', { type: 'button', class: 'link', title: `SHA-256 ${r.document_sha256 || ''}`, onclick: () => saveDocument(r) }, r.document_name);
    }
    if (r.status !== 'pending') return h('span', { class: 'empty' }, 'none on file');
    const file = h('input', { type: 'file', accept: DOCUMENT_TYPES, hidden: true, 'aria-label': `Written request for request ${r.id}` });
    file.addEventListener('change', async () => {
      const f = file.files && file.files[0];
      if (!f) return;
      try {
        await api('PUT', `/api/v1/sharing/requests/${r.id}/document`, await documentBody(f));
        put(decisionOut, h('p', { class: 'notice' }, `Written request ${f.name} is on file for request ${r.id}. It can now be approved.`));
      } catch (err) { put(decisionOut, problem(err, `The written request was not attached to request ${r.id}.`)); }
      load();
    });
    return h('span', {}, h('span', { class: 'tag pending' }, 'none on file'), ' ',
      h('button', { type: 'button', onclick: () => file.click() }, 'Attach written request'), file);
  }

  async function saveDocument(r) {
    try {
      const { blob, filename } = await api('GET', `/api/v1/sharing/requests/${r.id}/document`, undefined, { blob: true, filename: r.document_name });
      download(blob, filename);
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }

  async function decide(r, verb) {
    const approve = verb === 'approve';
    const note = await ask(approve ? `Approve request ${r.id} from ${r.agency_name}?` : `Deny request ${r.id} from ${r.agency_name}?`,
      { answer: approve ? 'Note for the record' : 'Why is it denied?', yes: approve ? 'Approve' : 'Deny' });
    if (note === null) return;
    try {
      await api('POST', `/api/v1/sharing/requests/${r.id}/${verb}`, approve ? { note: note || undefined } : { reason: note || undefined, note: note || undefined });
      put(decisionOut, h('p', { class: 'notice' }, `Request ${r.id} ${approve ? 'approved' : 'denied'}.`));
    } catch (err) {
      const [what, help] = REFUSALS[err.code] || [approve ? 'was not approved' : 'was not denied', null];
      // The explanation first; the server's own words after, smaller.
      put(decisionOut, h('div', { class: 'refusal', role: 'alert' },
        h('h2', {}, `Request ${r.id} ${what}`),
        help ? h('p', {}, help) : null,
        h('p', { class: help ? 'code' : null }, err.message, h('span', { class: 'code' }, ` (${err.code})`))));
    }
    load();
  }

  async function exportReads(r, button) {
    button.disabled = true;
    try {
      await saveThroughLink({ sharing_export: { request_id: r.id } });
      flash(`Export for request ${r.id} is downloading; it is recorded as a download and a transfer.`);
      // The link's download is recorded as the server starts sending it.
      setTimeout(() => Promise.all([load(), loadRegister()]).catch(() => {}), 1500);
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); } finally { button.disabled = false; }
  }

  // The register: per agency, what was asked, decided and sent.
  async function loadRegister() {
    const res = await api('GET', '/api/v1/sharing/register', undefined, { signal });
    const transfers = res.agencies.flatMap((l) => l.transfers).sort((a, b) => (a.sent_at < b.sent_at ? 1 : -1));
    put(register, h('h2', { id: 'register-h' }, 'Register of data shared'),
      h('p', {}, 'Every agency, its requests, and every transfer of data to it — exports from this system and transfers recorded by hand.'),
      table([
        ['Agency', (l) => l.agency.name, 'rowheader'],
        ['Requests', (l) => String(l.requests)],
        ['Approved', (l) => String(l.approved)],
        ['Refused or denied', (l) => String(l.refused_or_denied)],
        ['Transfers', (l) => String(l.transfers.length)],
        ['Reads shared', (l) => String(l.reads_shared)],
      ], res.agencies, 'No agencies recorded.'),
      h('h3', {}, 'Transfers'),
      table([
        ['Sent', (t) => when(t.sent_at)],
        ['To', (t) => t.agency_name],
        ['Request', (t) => (t.request_id ? String(t.request_id) : '')],
        ['How', (t) => METHOD_LABEL[t.method] || t.method],
        ['What', (t) => t.description],
        ['Reads', (t) => (t.reads === null || t.reads === undefined ? '' : String(t.reads))],
        ['Recorded by', (t) => t.recorded_by],
      ], transfers, 'Nothing has been sent to another agency.'));
  }

  const transferRequest = h('select', { name: 'request_id', required: true });
  const transferOut = h('div', { class: 'out' });
  const transferNone = h('p', { class: 'empty' }, 'A transfer is recorded against an approved request; there is none yet.');
  const transferForm = h('form', {},
    h('div', { class: 'row' },
      field('Request', transferRequest),
      field('How it was sent', select('method', METHODS, 'email')),
      field('Reads sent', input('reads', { type: 'number', min: '0', inputmode: 'numeric' }), 'If known.'),
      field('Sent', input('sent_at', { type: 'datetime-local' }), 'Now if left empty.')),
    field('What was sent, and to whom', input('description', { required: true, maxlength: '1000' }), 'For an e-mail: its subject and recipient. For media: what was on it and who took it.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Record transfer')), transferOut);
  submit(transferForm, transferOut, 'Not recorded.', async (v) => {
    await api('POST', '/api/v1/sharing/transfers', {
      request_id: Number(v.request_id), method: v.method, description: v.description,
      reads: v.reads === '' ? undefined : Number(v.reads), sent_at: toUtc(v.sent_at),
    });
    transferForm.reset();
    await Promise.all([loadRegister(), load()]);
    put(transferOut, h('p', { class: 'notice' }, 'Transfer recorded in the register.'));
  });
  const transferCard = h('div', { class: 'card' }, h('h2', {}, 'Record a transfer made outside the system'),
    h('p', {}, 'Data sent by e-mail, on a disc or by any other way than "Export data" must be recorded here, so the register shows it.'),
    transferNone, transferForm);

  const agOut = h('div', { class: 'out' });
  const agForm = h('form', { class: 'card' }, h('h2', {}, 'Record an agency'),
    h('div', { class: 'row' }, field('Name', input('name', { required: true })), field('Kind', select('kind', KINDS, 'ca_public')), field('State', input('state', { required: true, maxlength: '2', value: 'CA' }))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add agency')), agOut);
  submit(agForm, agOut, 'Not added.', async (v) => {
    await api('POST', '/api/v1/agencies', v);
    agForm.reset();
    put(agOut, '');
    await Promise.all([load(), loadRegister()]);
  });

  const agencySelect = h('select', { name: 'agency_id', required: true });
  const rqOut = h('div', { class: 'out' });
  const rqForm = h('form', { class: 'card' }, h('h2', {}, 'Record a written request'),
    h('div', { class: 'row' }, field('Agency', agencySelect), field('Requested by', input('requester_name', { required: true })), field('Their case number', input('case_number'))),
    h('div', { class: 'row' }, field('Purpose', input('purpose', { required: true })), field('Plate asked about', input('plate', { autocapitalize: 'characters' })),
      field('From', input('from', { type: 'date' })), field('To', input('to', { type: 'date' }))),
    field('Written request (PDF or image)', h('input', { type: 'file', name: 'document', accept: DOCUMENT_TYPES }),
      'The agency\'s signed request, at most 10 MB. A request cannot be approved until it is on file.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Record request')), rqOut);
  submit(rqForm, rqOut, 'Not recorded.', async (v) => {
    const query = {};
    if (v.plate) query.plate = v.plate;
    if (v.from) query.from = `${v.from}T00:00:00Z`;
    if (v.to) query.to = `${v.to}T23:59:59Z`;
    const file = rqForm.elements.document.files[0];
    const document = file ? await documentBody(file) : undefined;
    await api('POST', '/api/v1/sharing/requests', { agency_id: Number(v.agency_id), requester_name: v.requester_name, purpose: v.purpose, case_number: v.case_number || undefined, query, document });
    rqForm.reset();
    put(rqOut, file ? '' : h('p', { class: 'notice' }, 'Recorded without its written request: attach it before approving.'));
    await load();
  });

  put(main, ...heading('Sharing', 'Requests from other agencies, decided by the ALPR Administrator once the written request is on file. Every decision and transfer is logged.'),
    decisionOut, requests, rqForm, register, transferCard, agencies, agForm);
  await Promise.all([load(), loadRegister().catch((err) => { if (err.name !== 'AbortError') put(register, h('h2', { id: 'register-h' }, 'Register of data shared'), problem(err, 'The register cannot be shown.')); })]);
}
