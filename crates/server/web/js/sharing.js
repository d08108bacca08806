// Sharing with other agencies (R7): the agencies, written requests, and
// the administrator's approve or deny. California law allows sharing only
// with California public agencies; the server refuses the rest and the
// refusal is shown as it gives it.

import { api, saveThroughLink } from './api.js';
import { h, put, heading, field, input, select, table, when, flash, submit, ask } from './dom.js';

const KINDS = [['ca_public', 'California public agency'], ['federal', 'Federal agency'], ['out_of_state', 'Out-of-state agency'], ['private', 'Private entity']];

export async function sharingPage(main, { signal }) {
  const agencies = h('section', {});
  const requests = h('section', {});
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
    put(requests, h('h2', {}, 'Requests'), table([
      ['No.', (r) => String(r.id)],
      ['From', (r) => `${r.requester_name}, ${r.agency_name}`],
      ['Purpose', (r) => r.purpose],
      ['Case', (r) => r.case_number || ''],
      ['Received', (r) => r.received_on],
      ['Status', (r) => h('span', { class: `tag ${r.status}` }, r.status)],
      ['Decision', (r) => (r.decided_by ? `${r.decided_by}, ${when(r.decided_at)}${r.decision_note ? `: ${r.decision_note}` : ''}` : '')],
      ['', (r) => h('span', { class: 'actions' },
        r.status === 'pending' ? [
          h('button', { type: 'button', class: 'primary', onclick: () => decide(r, 'approve') }, 'Approve'),
          h('button', { type: 'button', onclick: () => decide(r, 'deny') }, 'Deny')] : null,
        r.status === 'approved' ? h('button', { type: 'button', onclick: (e) => exportReads(r, e.target) }, 'Export data') : null)],
    ], rq.requests, 'No sharing requests.'));
  }

  async function decide(r, verb) {
    const note = await ask(verb === 'approve' ? `Approve request ${r.id} from ${r.agency_name}?` : `Deny request ${r.id} from ${r.agency_name}?`,
      { answer: verb === 'approve' ? 'Note for the record' : 'Why is it denied?', yes: verb === 'approve' ? 'Approve' : 'Deny' });
    if (note === null) return;
    try {
      await api('POST', `/api/v1/sharing/requests/${r.id}/${verb}`, verb === 'approve' ? { note: note || undefined } : { reason: note || undefined, note: note || undefined });
      put(decisionOut, h('p', { class: 'notice' }, `Request ${r.id} ${verb === 'approve' ? 'approved' : 'denied'}.`));
    } catch (err) {
      put(decisionOut, h('div', { class: 'refusal', role: 'alert' },
        h('h2', {}, `Request ${r.id} cannot be approved`),
        h('p', {}, err.message, h('span', { class: 'code' }, ` (${err.code})`)),
        h('p', {}, 'Civil Code § 1798.90.55(b): ALPR information may be shared only with California public agencies. Deny the request and tell the requester.')));
    }
    load();
  }

  async function exportReads(r, button) {
    button.disabled = true;
    try {
      await saveThroughLink({ sharing_export: { request_id: r.id } });
      flash(`Export for request ${r.id} is downloading; it is recorded as a download and a transfer.`);
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); } finally { button.disabled = false; }
  }

  const agOut = h('div', { class: 'out' });
  const agForm = h('form', { class: 'card' }, h('h2', {}, 'Record an agency'),
    h('div', { class: 'row' }, field('Name', input('name', { required: true })), field('Kind', select('kind', KINDS, 'ca_public')), field('State', input('state', { required: true, maxlength: '2', value: 'CA' }))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add agency')), agOut);
  submit(agForm, agOut, 'Not added.', async (v) => {
    await api('POST', '/api/v1/agencies', v);
    agForm.reset();
    put(agOut, '');
    await load();
  });

  const agencySelect = h('select', { name: 'agency_id', required: true });
  const rqOut = h('div', { class: 'out' });
  const rqForm = h('form', { class: 'card' }, h('h2', {}, 'Record a written request'),
    h('div', { class: 'row' }, field('Agency', agencySelect), field('Requested by', input('requester_name', { required: true })), field('Their case number', input('case_number'))),
    h('div', { class: 'row' }, field('Purpose', input('purpose', { required: true })), field('Plate asked about', input('plate', { autocapitalize: 'characters' })),
      field('From', input('from', { type: 'date' })), field('To', input('to', { type: 'date' }))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Record request')), rqOut);
  submit(rqForm, rqOut, 'Not recorded.', async (v) => {
    const query = {};
    if (v.plate) query.plate = v.plate;
    if (v.from) query.from = `${v.from}T00:00:00Z`;
    if (v.to) query.to = `${v.to}T23:59:59Z`;
    await api('POST', '/api/v1/sharing/requests', { agency_id: Number(v.agency_id), requester_name: v.requester_name, purpose: v.purpose, case_number: v.case_number || undefined, query });
    rqForm.reset();
    put(rqOut, '');
    await load();
  });

  put(main, ...heading('Sharing', 'Requests from other agencies, decided by the ALPR Administrator. Every decision and transfer is logged.'),
    decisionOut, requests, rqForm, agencies, agForm);
  await load();
}
