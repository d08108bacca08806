// Sign-in, and the first sign-in's enrolment: a new password, then an
// authenticator app (the QR code is drawn by the server, never by an
// outside service).

import { api, session } from './api.js';
import { h, put, field, input, problem, busy, values } from './dom.js';
import { passkeysSupported, signInWithPasskey, passkeyEnrolment, browserProblem } from './passkeys.js';

// The one-time password typed at a first sign-in, kept in memory (never
// in storage) so the password form need not ask for it again.
let oneTimePassword;

export function signIn(main, { settings, message, onSignedIn }) {
  document.title = 'Sign in — Platekeeper';
  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', { class: 'lead' }, `${settings.agency_name} — automated license plate reader system. Use is logged and audited.`),
    message ? h('div', { class: 'notice', role: 'status' }, message) : null,
    field('Username', input('username', { autocomplete: 'username', required: true, autocapitalize: 'none' })),
    field('Password', input('password', { type: 'password', autocomplete: 'current-password', required: true }),
      'A new account signs in with its one-time password.'),
    field('Authenticator code', input('totp', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' }),
      'Six digits from your authenticator app (or use a passkey instead). Leave it empty only if you have not set one up yet.'),
    h('div', { class: 'actions' },
      h('button', { class: 'primary', type: 'submit' }, 'Sign in'),
      passkeysSupported() ? h('button', { type: 'button', id: 'passkey-sign-in', onclick: withPasskey }, 'Sign in with a passkey') : null),
    out);
  async function signedIn(s, password) {
    session.set({ token: s.token, expires_at: s.expires_at });
    oneTimePassword = s.next.includes('change_password') ? password : undefined;
    await onSignedIn();
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = values(form);
    busy(form, async () => {
      try {
        await signedIn(await api('POST', '/api/v1/session', {
          username: v.username, password: v.password, totp: v.totp || undefined,
        }), v.password);
      } catch (err) {
        put(out, problem(err, explainSignIn(err.code)));
      }
    });
  });
  // The password first, then the passkey instead of the code.
  function withPasskey() {
    if (!form.elements.username.reportValidity() || !form.elements.password.reportValidity()) return;
    const v = values(form);
    busy(form, async () => {
      try {
        await signedIn(await signInWithPasskey(v.username, v.password), v.password);
      } catch (err) {
        const local = browserProblem(err);
        put(out, problem(local ? { message: local } : err, local ? 'Not signed in.' : explainSignIn(err.code)));
      }
    });
  }
  put(main, form);
  form.elements.username.focus();
}

function explainSignIn(code) {
  return {
    invalid_credentials: 'Not signed in.',
    account_locked: 'Account locked.',
    too_many_attempts: 'Too many failed sign-ins.',
    code_already_used: 'That code was just used — wait for the next one. This did not count as a wrong code.',
    passkey_required: 'Use your passkey.',
    no_passkey: 'No passkey yet.',
    passkeys_unavailable: 'Passkeys are not set up on this server.',
    training_required: 'Training needed.',
    approval_lapsed: 'Approval needed.',
    account_suspended: 'Account suspended.',
  }[code] || 'Not signed in.';
}

/** Finishes the steps `/me` lists in `next`, one at a time. */
export function enrol(main, { me, onDone }) {
  document.title = 'Finish enrolment — Platekeeper';
  if (me.next.includes('change_password')) return newPassword(main, onDone);
  if (me.next.includes('enroll_totp')) return authenticator(main, onDone);
  if (me.next.includes('enroll_passkey')) return passkeyEnrolment(main, onDone);
  return onDone();
}

function newPassword(main, onDone) {
  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card narrow' },
    h('h1', {}, 'Choose your password'),
    h('p', { class: 'lead' }, 'Your one-time password works only once. Choose a password of at least 12 characters that is hard to guess: a few unrelated words work well. Common passwords, repeated characters, keyboard rows and your own name are refused.'),
    oneTimePassword ? null : field('Current (one-time) password', input('current', { type: 'password', autocomplete: 'current-password', required: true })),
    field('New password', input('new', { type: 'password', autocomplete: 'new-password', required: true, minlength: '12' })),
    field('New password again', input('again', { type: 'password', autocomplete: 'new-password', required: true })),
    h('button', { class: 'primary', type: 'submit' }, 'Set password'),
    out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = values(form);
    if (v.new !== v.again) { put(out, problem({ message: 'The two new passwords differ.' })); return; }
    busy(form, async () => {
      try {
        await api('POST', '/api/v1/me/password', { current: oneTimePassword || v.current, new: v.new });
        oneTimePassword = undefined;
        await onDone();
      } catch (err) { put(out, problem(err, 'Password not changed.')); }
    });
  });
  put(main, form);
  form.querySelector('input').focus();
}

async function authenticator(main, onDone) {
  const out = h('div', { class: 'out' });
  let enrolment;
  try { enrolment = await api('POST', '/api/v1/me/totp'); } catch (err) { put(main, problem(err, 'Two-factor enrolment could not start.')); return; }
  const form = h('form', { class: 'card narrow' },
    h('h1', {}, 'Set up your authenticator'),
    h('p', { class: 'lead' }, 'Scan the code with an authenticator app (RFC 6238, six digits), then type the code it shows.'),
    h('img', { class: 'qr', alt: 'QR code for your authenticator app', width: 200, height: 200,
      src: `data:image/svg+xml;base64,${btoa(enrolment.qr_svg)}` }),
    h('p', {}, 'Or type this key into the app: ', h('code', { class: 'secret' }, enrolment.secret)),
    field('Code from the app', input('code', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6', required: true })),
    h('button', { class: 'primary', type: 'submit' }, 'Confirm'),
    out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        await api('POST', '/api/v1/me/totp/confirm', { code: values(form).code });
        await onDone();
      } catch (err) { put(out, problem(err, 'Not confirmed.')); }
    });
  });
  put(main, form);
  form.elements.code.focus();
}
