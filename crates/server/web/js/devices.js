// The agency's devices (issue 24 item 3): each computer, phone or tablet
// that may reach plate data holds a client certificate from the agency's
// own authority. Registering one shows its certificate file and
// passphrase once; revoking it refuses it from its next request.

import { api } from './api.js';
import { h, put, heading, field, input, select, table, when, flash, submit, ask, download } from './dom.js';

export async function devicesPage(main, { signal }) {
  const list = h('section', { 'aria-labelledby': 'devices-h' });
  const issued = h('div', { 'aria-live': 'polite' });
  const rule = h('p', { class: 'notice' });
  let people = [];
  try { people = (await api('GET', '/api/v1/users?limit=500', undefined, { signal })).users.filter((u) => u.status !== 'deleted'); } catch { /* the form still works without the list */ }

  async function load() {
    const res = await api('GET', '/api/v1/devices', undefined, { signal });
    put(rule, res.devices_required
      ? 'Plate data is served only to registered devices: a search from any other computer is refused and logged.'
      : 'No device is required yet: plate data can be reached from any computer. Registering the first device turns the rule on.');
    put(list, h('h2', { id: 'devices-h' }, 'Devices'), table([
      ['No.', (d) => String(d.id)],
      ['Device', (d) => d.name],
      ['Issued to', (d) => d.assigned_to || '—'],
      ['Certificate', (d) => h('code', { title: d.fingerprint }, `SHA-256 ${d.fingerprint.slice(0, 16)}…`)],
      ['Issued', (d) => `${when(d.issued_at)} by ${d.issued_by}`],
      ['Good until', (d) => when(d.not_after)],
      ['Status', (d) => (d.revoked_at ? h('span', { class: 'tag suspended' }, `revoked ${when(d.revoked_at)}: ${d.revoke_reason || ''}`) : h('span', { class: 'tag active' }, 'active'))],
      ['', (d) => (d.revoked_at ? '' : h('button', { type: 'button', class: 'danger', onclick: () => revoke(d) }, 'Revoke'))],
    ], res.devices, 'No devices registered.'));
  }

  async function revoke(d) {
    const reason = await ask(`Revoke ${d.name}? Its certificate is refused from its next request; a replacement needs a new registration.`,
      { answer: 'Why (lost, stolen, retired)?', required: true, yes: 'Revoke', danger: true });
    if (!reason) return;
    try { await api('DELETE', `/api/v1/devices/${d.id}?reason=${encodeURIComponent(reason)}`); flash(`${d.name} revoked.`); await load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }

  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'Register a device'),
    h('div', { class: 'row' },
      field('Name', input('name', { required: true, maxlength: '100', placeholder: 'Unit 12 MDT' })),
      field('Issued to', select('assigned_to', [['', 'No one in particular'], ...people.map((u) => [u.username, `${u.name} (${u.username})`])], ''))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Register and issue certificate')), out);
  submit(form, out, 'Not registered.', async (v) => {
    const r = await api('POST', '/api/v1/devices', { name: v.name, assigned_to: v.assigned_to || undefined });
    form.reset();
    put(out, '');
    const bytes = Uint8Array.from(atob(r.pkcs12_base64), (c) => c.charCodeAt(0));
    // Shown once: the server keeps no copy of the key or the passphrase.
    put(issued, h('div', { class: 'card secret-once', role: 'status' },
      h('h2', {}, `Certificate for ${r.device.name}`),
      h('p', {}, 'Install this file on the device and give its passphrase to whoever installs it. Both are shown only now: if they are lost, revoke the device and register it again.'),
      h('p', {}, 'Passphrase: ', h('code', { class: 'secret' }, r.passphrase)),
      h('button', { type: 'button', class: 'primary', onclick: () => download(new Blob([bytes], { type: 'application/x-pkcs12' }), r.file_name) }, `Save ${r.file_name}`),
      r.devices_required ? h('p', { class: 'notice' }, 'From now on plate data is served only to registered devices.') : null));
    await load();
  });

  put(main, ...heading('Devices', 'Agency-issued computers, phones and tablets. Each holds a client certificate from the agency\'s own authority; the browser presents it when it connects over HTTPS. Sign-in and the public page work from anywhere; plate data only from a registered device.'),
    rule, issued, form, list);
  await load();
}
