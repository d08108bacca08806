// Passkeys (issue 24 item 4): a second factor bound to this site's
// address, so a look-alike page cannot pass on what it collects. The
// server sends WebAuthn options with binary fields in base64url; the
// browser's API wants bytes, and its answers go back as base64url.

import { api } from './api.js';
import { h, put, heading, field, input, table, when, flash, ask, problem } from './dom.js';

export function passkeysSupported() {
  return Boolean(window.PublicKeyCredential && navigator.credentials);
}

function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buf) {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function creationOptions(o) {
  const pk = { ...o.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function requestOptions(o) {
  const pk = { ...o.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function created(cred) {
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: toB64url(cred.response.attestationObject),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    },
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

function asserted(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

/** Registers a passkey named `name` for the signed-in person. */
export async function addPasskey(name) {
  const start = await api('POST', '/api/v1/me/passkeys/options');
  const cred = await navigator.credentials.create(creationOptions(start.options));
  if (!cred) throw new Error('No passkey was made.');
  return api('POST', '/api/v1/me/passkeys', { challenge_id: start.challenge_id, name, credential: created(cred) });
}

/** Both steps of a sign-in with a passkey; the session, as a code sign-in gives it. */
export async function signInWithPasskey(username, password) {
  const start = await api('POST', '/api/v1/session/passkey', { username, password });
  const cred = await navigator.credentials.get(requestOptions(start.options));
  if (!cred) throw new Error('The passkey gave no answer.');
  return api('POST', '/api/v1/session', { username, password, passkey: { challenge_id: start.challenge_id, credential: asserted(cred) } });
}

/** What went wrong in the browser's part (cancelled, no authenticator). */
export function browserProblem(err) {
  if (err && err.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
  if (err && err.name === 'InvalidStateError') return 'This authenticator already holds a passkey for you.';
  if (err && err.name === 'SecurityError') return 'Passkeys do not work at this address: open Platekeeper at the address the agency published.';
  return null;
}

function nameForm(onAdded, { first = false } = {}) {
  const out = h('div', { class: 'out' });
  const form = h('form', { class: first ? 'card narrow' : 'inline-form' },
    first ? h('h1', {}, 'Add a passkey') : h('h3', {}, 'Add a passkey'),
    first ? h('p', { class: 'lead' }, 'The agency requires a passkey to sign in: your phone, your computer\'s fingerprint or face sign-in, or a security key. It works only at this site\'s address, so a look-alike page cannot use it.') : null,
    field('Name', input('name', { required: true, maxlength: '60', placeholder: 'work laptop' }), 'So you can tell your passkeys apart later.'),
    h('button', { class: 'primary', type: 'submit', disabled: passkeysSupported() ? null : 'disabled' }, 'Add passkey'),
    passkeysSupported() ? null : h('p', { class: 'notice' }, 'This browser cannot use passkeys.'),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = form.elements.name.value;
    try {
      await addPasskey(name);
      flash(`Passkey “${name}” added.`);
      await onAdded();
    } catch (err) {
      put(out, problem({ message: browserProblem(err) || err.message, code: err.code }, 'No passkey was added.'));
    }
  });
  return form;
}

/** The enrolment step when the policy requires a passkey and there is none. */
export function passkeyEnrolment(main, onDone) {
  document.title = 'Add a passkey — Platekeeper';
  put(main, nameForm(onDone, { first: true }));
  main.querySelector('input').focus();
}

/** The person's own account: their passkeys. */
export async function accountPage(main, { me, signal }) {
  const list = h('section', { 'aria-labelledby': 'passkeys-h' });
  async function load() {
    const res = await api('GET', '/api/v1/me/passkeys', undefined, { signal });
    put(list, h('h2', { id: 'passkeys-h' }, 'Passkeys'),
      h('p', { class: 'notice' }, res.required
        ? (res.code_accepted ? 'The agency requires you to sign in with a passkey. Add one: until you do, your code still works.' : 'You sign in with a passkey; codes from your authenticator app are no longer accepted from you.')
        : 'A passkey can replace the code from your authenticator app when you sign in, and cannot be phished.'),
      table([
        ['Name', (p) => p.name],
        ['Added', (p) => when(p.created_at)],
        ['Last used', (p) => (p.last_used_at ? when(p.last_used_at) : 'never')],
        ['', (p) => h('button', { type: 'button', class: 'danger', onclick: () => remove(p) }, 'Remove')],
      ], res.passkeys, 'No passkeys yet.'),
      nameForm(load));
  }
  async function remove(p) {
    if (!(await ask(`Remove the passkey “${p.name}”? It can no longer be used to sign in.`, { yes: 'Remove', danger: true }))) return;
    try { await api('DELETE', `/api/v1/me/passkeys/${p.id}`); flash(`Passkey “${p.name}” removed.`); await load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  put(main, ...heading('Your account', `${me.name} · ${me.username} · ${me.role}`), list);
  await load();
}
