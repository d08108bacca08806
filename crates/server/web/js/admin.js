// The ALPR Administrator's pages (R5, R6.1): users and what is due for
// review, cameras and their keys, and the agency's policy.

import { api } from './api.js';
import { h, put, heading, field, input, select, values, table, when, problem, busy, flash, submit, ask } from './dom.js';

const ROLES = ['officer', 'dispatcher', 'cso', 'analyst', 'administrator', 'auditor', 'vendor'].map((r) => [r, r]);
const today = () => new Date().toISOString().slice(0, 10);
const inDays = (n) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);

async function act(promise, done) {
  try { await promise; flash(done); return true; } catch (err) { flash(`${err.message} (${err.code})`, 'error'); return false; }
}

export async function usersPage(main, { me, signal }) {
  // Default dates inside the agency's periods (the server checks them).
  let days = { training: 364, approval: 364 };
  if (me.rights.includes('manage_policy')) {
    try {
      const p = await api('GET', '/api/v1/policy', undefined, { signal });
      days = { training: p.accounts.training_days - 1, approval: p.accounts.approval_days - 1 };
    } catch { /* keep the defaults */ }
  }
  const reviews = h('section', { 'aria-labelledby': 'reviews-h' });
  const users = h('section', { 'aria-labelledby': 'users-h' });
  const detail = h('section', { class: 'user-detail', 'aria-live': 'polite' });

  async function load() {
    const [rv, us] = await Promise.all([
      api('GET', '/api/v1/reviews', undefined, { signal }),
      api('GET', '/api/v1/users?limit=500', undefined, { signal }),
    ]);
    put(reviews, h('h2', { id: 'reviews-h' }, `Due for review (next ${rv.notice_days} days)`),
      table([
        ['Due', (r) => when(r.due_at)],
        ['User', (r) => h('button', { type: 'button', class: 'link', onclick: () => open(r.username) }, `${r.name} (${r.username})`)],
        ['Role', (r) => r.role],
        ['What', (r) => h('span', { class: `tag ${r.kind}` }, r.kind.replace(/_/g, ' '))],
        ['Action', (r) => r.message],
      ], rv.reviews, 'Nothing is due: every approval and training record is current.'));
    put(users, h('h2', { id: 'users-h' }, 'Accounts'),
      table([
        ['User', (u) => h('button', { type: 'button', class: 'link', onclick: () => open(u.username) }, u.username)],
        ['Name', (u) => `${u.name}${u.title ? `, ${u.title}` : ''}`],
        ['Role', (u) => u.role],
        ['Status', (u) => h('span', { class: `tag ${u.status}` }, u.status)],
        ['Passkeys', (u) => String(u.passkeys ?? 0)],
        ['Training until', (u) => (u.training_expires_on ? when(u.training_expires_on).slice(0, 10) : '—')],
        ['Approved until', (u) => (u.approval_expires_on ? when(u.approval_expires_on).slice(0, 10) : '—')],
        ['Last active', (u) => when(u.last_active) || 'never'],
      ], us.users.filter((u) => u.status !== 'deleted'), 'No accounts.'));
  }

  async function open(username) {
    const u = await api('GET', `/api/v1/users/${encodeURIComponent(username)}`);
    const path = `/api/v1/users/${encodeURIComponent(username)}`;
    const reload = async () => { await load(); await open(username); };
    const training = h('form', { class: 'inline' },
      field('Course', input('course', { value: 'ALPR use and privacy', required: true })),
      field('Completed', input('completed_on', { type: 'date', value: today(), required: true })),
      field('Expires', input('expires_on', { type: 'date', value: inDays(days.training), required: true })),
      h('button', { type: 'submit' }, 'Record training'));
    training.addEventListener('submit', (e) => { e.preventDefault(); busy(training, async () => { if (await act(api('POST', `${path}/training`, values(training)), `Training recorded for ${username}.`)) reload(); }); });
    const approval = h('form', { class: 'inline' },
      field('Approved until', input('expires_on', { type: 'date', value: inDays(days.approval) })),
      h('button', { type: 'submit' }, 'Approve'));
    approval.addEventListener('submit', (e) => { e.preventDefault(); busy(approval, async () => { if (await act(api('POST', `${path}/approval`, values(approval)), `${username} approved.`)) reload(); }); });
    const role = h('form', { class: 'inline' },
      field('Role', select('role', ROLES, u.role)),
      h('button', { type: 'submit' }, 'Change role'));
    role.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!(await ask(`Change ${username}'s role? Training and approval must then be given again.`, { yes: 'Change role' }))) return;
      busy(role, async () => { if (await act(api('POST', `${path}/role`, values(role)), `${username}'s role changed.`)) reload(); });
    });
    const reasoned = (verb, label, warn) => h('button', { type: 'button', onclick: async () => {
      const reason = await ask(warn, { answer: 'Reason', yes: label });
      if (reason === null) return;
      if (await act(api('POST', `${path}/${verb}`, { reason: reason || undefined }), `${username}: ${label.toLowerCase()} done.`)) reload();
    } }, label);
    const otp = h('div', { class: 'out' });
    put(detail, h('div', { class: 'card' },
      h('h2', {}, `${u.name} (${u.username})`),
      h('p', {}, `${u.role} · ${u.status} · created ${when(u.created_at)} by ${u.created_by}`),
      u.locked_until ? h('p', { class: 'notice' }, `Locked after failed sign-ins; unlocks by itself at ${when(u.locked_until)}.`) : null,
      u.next.length ? h('p', { class: 'notice' }, `Enrolment not finished: ${u.next.join(', ').replace(/_/g, ' ')}.`) : null,
      h('h3', {}, 'Training'), training,
      h('h3', {}, 'Approval'), approval,
      h('h3', {}, 'Role'), role,
      h('h3', {}, 'Account'),
      h('div', { class: 'actions' },
        u.status === 'suspended' ? reasoned('reactivate', 'Reactivate', 'Why is the account reactivated? New training and approval are then needed.')
          : reasoned('suspend', 'Suspend', 'Why is the account suspended?'),
        u.status === 'locked' ? reasoned('unlock', 'Unlock', 'Why is the account unlocked?') : null,
        u.passkeys ? h('button', { type: 'button', onclick: async () => {
          const reason = await ask(`Remove all ${u.passkeys} of ${username}'s passkeys? Do this only for someone who lost them, after checking who they are: they then sign in with their authenticator code and add a new passkey.`,
            { answer: 'Why (lost phone, identity checked in person)?', required: true, yes: 'Remove passkeys', danger: true });
          if (!reason) return;
          if (await act(api('DELETE', `${path}/passkeys?reason=${encodeURIComponent(reason)}`), `${username}'s passkeys removed.`)) reload();
        } }, `Remove passkeys (${u.passkeys})`) : null,
        h('button', { type: 'button', onclick: async () => {
          if (!(await ask(`Give ${username} a new one-time password? Their sessions end and they enrol again.`, { yes: 'Reset password' }))) return;
          try { const r = await api('POST', `${path}/reset`); put(otp, h('p', { class: 'notice' }, `New one-time password for ${username} (shown once): `, h('code', {}, r.one_time_password))); } catch (err) { put(otp, problem(err)); }
        } }, 'Reset password'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!(await ask(`Delete ${username}? The account stops working at once; its log entries stay.`, { yes: 'Delete', danger: true }))) return;
          if (await act(api('DELETE', path), `${username} deleted.`)) { detail.replaceChildren(); load(); }
        } }, 'Delete')),
      otp));
    detail.scrollIntoView({ block: 'nearest' });
  }

  const out = h('div', { class: 'out' });
  const create = h('form', { class: 'card' },
    h('h2', {}, 'New account'),
    h('div', { class: 'row' },
      field('Username', input('username', { required: true, autocapitalize: 'none', placeholder: 'jdoe' })),
      field('Full name', input('name', { required: true })),
      field('Title', input('title', { placeholder: 'Officer' })),
      field('Role', select('role', ROLES, 'officer'))),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Create account')), out);
  submit(create, out, 'Not created.', async (v) => {
    const r = await api('POST', '/api/v1/users', { username: v.username, name: v.name, role: v.role, title: v.title || undefined });
    put(out, h('p', { class: 'notice' }, `Account ${r.username} created. One-time password (shown once; give it in person): `, h('code', {}, r.one_time_password),
      '. Record training and approval before the person can reach plate data.'));
    create.reset();
    await load();
  });

  put(main, ...heading('Users', 'Accounts, training, approvals and roles. Every change is logged with your name.'), reviews, users, detail, create);
  await load();
}

export async function camerasPage(main, { signal }) {
  const list = h('div', {});
  async function load() {
    const res = await api('GET', '/api/v1/cameras?limit=1000', undefined, { signal });
    // Working cameras first; disabled ones after, marked as such.
    const cams = [...res.cameras].sort((a, b) => Number(!!a.revoked_at) - Number(!!b.revoked_at));
    put(list, table([
      ['Id', (c) => c.id], ['Name', (c) => c.name], ['Kind', (c) => c.kind],
      ['Place', (c) => (c.lat !== null ? `${c.lat.toFixed(5)}, ${c.lon.toFixed(5)}` : 'mobile')],
      ['Key', (c) => (c.revoked_at ? [h('span', { class: 'tag suspended' }, 'Disabled'), ` keys revoked ${when(c.revoked_at)}`]
        : c.old_key_valid_until ? `rotated; old key works until ${when(c.old_key_valid_until)}` : h('span', { class: 'tag active' }, 'active'))],
      ['', (c) => h('span', { class: 'actions' },
        h('button', { type: 'button', onclick: () => rename(c) }, 'Rename'),
        h('button', { type: 'button', onclick: () => rotate(c) }, c.revoked_at ? 'New key (enable)' : 'Rotate key'),
        c.revoked_at ? null : h('button', { type: 'button', class: 'danger', onclick: () => revoke(c) }, 'Disable (revoke keys)'))],
    ], cams, 'No cameras registered.', (c) => ({ class: c.revoked_at ? 'disabled' : null })));
  }
  async function rename(c) {
    const name = await ask(`New name for ${c.id}? Its id and position stay as they are.`, { answer: 'Name', value: c.name, required: true, yes: 'Rename' });
    if (!name || name === c.name) return;
    try {
      const r = await api('PATCH', `/api/v1/cameras/${encodeURIComponent(c.id)}`, { name });
      flash(`${r.id} renamed "${r.name}".`);
      load();
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  // A rotation shows the new key once; the old one keeps working for the
  // grace period while the new one is put in the camera.
  async function rotate(c) {
    const minutes = c.revoked_at ? '0' : await ask(`Give ${c.id} a new key? Its current key keeps working for the minutes you give (0 to 10080), while you put the new one in.`, { answer: 'Grace period (minutes)', required: true, yes: 'Rotate key' });
    if (minutes === null) return;
    try {
      const r = await api('POST', `/api/v1/cameras/${encodeURIComponent(c.id)}/rotate`, { grace_minutes: Number(minutes) });
      put(out, h('p', { class: 'notice' }, `New key for ${r.id}, shown once — put it in the camera now: `, h('code', {}, r.api_key),
        r.old_key_valid_until ? ` The old key works until ${when(r.old_key_valid_until)}.` : ' The old key no longer works.'));
      load();
    } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  async function revoke(c) {
    const reason = await ask(`Disable ${c.id} by revoking every key it has? Its next upload is refused. A new key brings it back.`, { answer: 'Why (stolen, key leaked, retired)?', required: true, yes: 'Disable', danger: true });
    if (!reason) return;
    try { await api('POST', `/api/v1/cameras/${encodeURIComponent(c.id)}/revoke`, { reason }); flash(`${c.id} disabled: its keys are revoked.`); load(); } catch (err) { flash(`${err.message} (${err.code})`, 'error'); }
  }
  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card' },
    h('h2', {}, 'Register a camera'),
    h('div', { class: 'row' },
      field('Id', input('id', { required: true, placeholder: 'cam-broadway-14th' })),
      field('Name', input('name', { required: true })),
      field('Kind', select('kind', [['fixed', 'fixed'], ['mobile', 'mobile']], 'fixed'))),
    h('div', { class: 'row' }, field('Latitude', input('lat', { inputmode: 'decimal' })), field('Longitude', input('lon', { inputmode: 'decimal' }))),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Register')), out);
  submit(form, out, 'Not registered.', async (v) => {
    const c = await api('POST', '/api/v1/cameras', { id: v.id, name: v.name, kind: v.kind, lat: v.lat ? Number(v.lat) : undefined, lon: v.lon ? Number(v.lon) : undefined });
    put(out, h('p', { class: 'notice' }, `Camera ${c.id} registered. Its API key is shown once — put it in the camera now: `, h('code', {}, c.api_key)));
    form.reset();
    load();
  });
  put(main, ...heading('Cameras', 'Each camera sends reads with its own key; keys are stored only as hashes. A camera can be renamed, or disabled by revoking its keys. Its position cannot be edited: reads from a fixed camera take their place from it, so a camera that moves is registered again under a new id and its earlier reads keep the place where they were made.'), list, form);
  await load();
}

// The policy, as a form: each field its path in the policy, its label,
// and how it is edited (`lines`: a list, one per line; `nullable`: empty
// is none; `text`: a large text; `optional`: shown only where the
// server's policy has it, so the page works with servers before and after
// the field was added). Fields not listed are sent back as they came.
const POLICY_FIELDS = [
  ['Agency', [['agency_name', 'Agency name'], ['administrator_name', 'ALPR Administrator'], ['administrator_title', 'Administrator\'s title']]],
  ['Purpose of a search', [
    ['purpose.offenses', 'Offenses accepted, one per line', { as: 'lines', hint: 'A search must name one of these. Empty: the built-in list of common offenses, and code sections such as 211 PC or 10851 VC.' }],
    ['purpose.case_number_format', 'Case-number format', { as: 'nullable', hint: '# a digit, @ a letter, ? a letter or digit, anything else itself: ##-###### accepts 26-004211. Empty: at least 4 characters with a digit.' }]]],
  ['Retention (days)', [['retention.reads_days', 'Reads'], ['retention.images_days', 'Images'], ['retention.hotlists_days', 'Hot-list entries'], ['retention.access_log_days', 'Access log'], ['retention.audit_documents_days', 'Audit documents'], ['retention.downloads_days', 'Downloads']]],
  ['Accounts', [['accounts.session_hours', 'Session hours'], ['accounts.lockout_attempts', 'Failed sign-ins before lock'], ['accounts.admin_lockout_minutes', 'Administrator lock lasts (minutes)'], ['accounts.lockout_minutes', 'Others\' lock lasts (minutes; 0 until unlocked)'], ['accounts.inactivity_days', 'Suspend after unused (days)'], ['accounts.approval_days', 'Approval lasts (days)'], ['accounts.training_days', 'Training lasts (days)'],
    ['accounts.passkeys_only', 'Everyone signs in with a passkey (codes refused from anyone who has one)', { as: 'bool', optional: true }],
    ['accounts.passkey_roles', 'Roles that must sign in with a passkey', { as: 'roles', optional: true, hint: 'A person of these roles who has a passkey can no longer sign in with a code, which can be phished; one who has none is asked to add one at the next sign-in.' }]]],
  ['Alerts', [['alerts.resend_after_s', 'Send an unacknowledged alert again after (seconds, 10–3600)'], ['alerts.max_sends', 'Sends of one alert at most (1–100)']]],
  ['Audit log', [['audit.on_tamper', 'If the log fails its check at start: refuse or alarm']]],
  ['Map', [['map.center_lat', 'Centre latitude'], ['map.center_lon', 'Centre longitude'], ['map.zoom', 'Zoom (3–18)'], ['map.tile_url', 'Tile server URL (optional, your own)'],
    ['map.geocoder_url', 'Address search URL (optional, your own)', { optional: true, hint: 'The agency\'s own geocoder, with {query} where the address goes, e.g. https://geo.agency.gov/search?format=json&q={query}. Empty: no address search.' }]]],
  ['Public policy', [['public_policy_markdown', 'Usage and privacy policy (Markdown)', { as: 'text', hint: 'Published on the public transparency page (/transparency). # for a heading, * for a list, **bold**. At most 200,000 characters.' }]]],
];

const getPath = (o, p) => p.split('.').reduce((x, k) => (x == null ? x : x[k]), o);
function setPath(o, p, v) { const ks = p.split('.'); const last = ks.pop(); ks.reduce((x, k) => x[k], o)[last] = v; }
const shown = (policy, [p, , opts = {}]) => !opts.optional || getPath(policy, p) !== undefined;

function policyControl(policy, [p, label, opts = {}]) {
  const v = getPath(policy, p);
  if (opts.as === 'text') return field(label, h('textarea', { name: p, rows: '14', class: 'policy-text', value: v ?? '' }), opts.hint);
  if (opts.as === 'lines') return field(label, h('textarea', { name: p, rows: '6', value: (v || []).join('\n') }), opts.hint);
  if (opts.as === 'bool') return h('label', { class: 'check' }, h('input', { type: 'checkbox', name: p, checked: v ? 'checked' : null }), ` ${label}`);
  if (opts.as === 'roles') {
    return h('fieldset', { class: 'roles' }, h('legend', {}, label),
      ROLES.map(([r]) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: p, value: r, checked: (v || []).includes(r) ? 'checked' : null }), ` ${r}`)),
      opts.hint ? h('p', { class: 'hint' }, opts.hint) : null);
  }
  return field(label, input(p, { value: v ?? '', type: typeof v === 'number' ? 'number' : 'text', step: 'any' }), opts.hint);
}

/** A control's value as the policy holds it. */
function policyValue(policy, [p, , opts = {}], form) {
  if (opts.as === 'bool') return form.elements[p].checked;
  if (opts.as === 'roles') return [...form.querySelectorAll(`input[name="${p}"]`)].filter((c) => c.checked).map((c) => c.value);
  const raw = form.elements[p].value;
  if (opts.as === 'text') return raw;
  if (opts.as === 'lines') return raw.split('\n').map((l) => l.trim()).filter(Boolean);
  if (opts.as === 'nullable') return raw.trim() || null;
  return typeof getPath(policy, p) === 'number' ? Number(raw) : raw.trim();
}

export async function policyPage(main, { signal }) {
  const policy = await api('GET', '/api/v1/policy', undefined, { signal });
  const out = h('div', { class: 'out' });
  const form = h('form', { class: 'card' },
    POLICY_FIELDS.map(([legend, fields]) => h('fieldset', {}, h('legend', {}, legend),
      h('div', { class: 'row wrap' }, fields.filter((f) => shown(policy, f)).map((f) => policyControl(policy, f))))),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Save policy')), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = structuredClone(policy);
    for (const [, fields] of POLICY_FIELDS) {
      for (const f of fields) if (shown(policy, f)) setPath(next, f[0], policyValue(policy, f, form));
    }
    busy(form, async () => {
      try {
        // The whole policy is sent: the server refuses a policy with a
        // field missing rather than reset it.
        let saved;
        try {
          saved = await api('PUT', '/api/v1/policy', next);
        } catch (err) {
          const weak = err.code === 'confirmation_required' ? err.error.weakenings : null;
          if (!weak) throw err;
          const show = (v) => (typeof v === 'string' && v.length > 60 ? `${v.slice(0, 60)}…` : JSON.stringify(v));
          const list = weak.map((w) => `${w.field} from ${show(w.old)} to ${show(w.new)}: ${w.why}`).join('; ');
          const ok = await ask(`This change weakens the agency's rules — ${list}. Make it anyway? It is logged with the old and new values and listed in the audit report.`,
            { yes: 'Make the change', danger: true });
          if (!ok) { put(out, h('p', { class: 'notice' }, 'Not saved: nothing changed.')); return; }
          saved = await api('PUT', '/api/v1/policy', { ...next, confirm_weakening: weak.map((w) => w.field) });
        }
        Object.assign(policy, saved);
        put(out, h('p', { class: 'notice' }, 'Policy saved and logged.'));
      } catch (err) { put(out, problem(err, 'Not saved.')); }
    });
  });
  put(main, ...heading('Policy', 'The purpose rules, retention, account and alert rules, the map and the public policy text. Settings that would switch a rule off are refused; a change that weakens one (a retention shortened, more sign-in attempts, …) asks you to confirm; each change is logged with its old and new values.'), form);
}
