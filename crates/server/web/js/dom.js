// Small DOM helpers. Everything a server or a person typed goes in as
// text (textContent), never as markup, so data cannot become script.

/** h('button', {class: 'primary', onclick: f}, 'Search') → an element. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

/** Replaces an element's children. */
export function put(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
  return el;
}

/** A page heading and its one-line explanation. */
export function heading(title, lead) {
  return [h('h1', {}, title), lead ? h('p', { class: 'lead' }, lead) : null];
}

let flashTimer;
/** A short message at the top of the page, read out by screen readers. */
export function flash(message, kind = 'ok') {
  const el = document.getElementById('flash');
  if (!el) return;
  put(el, h('div', { class: `flash ${kind}` }, message));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => el.replaceChildren(), 8000);
}

/** What a person can do when their account is refused plate data. */
export const DENIAL_HELP = {
  training_required: 'Your ALPR training is not current. Plate data opens again once the ALPR Administrator records your refresher.',
  approval_lapsed: 'Your approval by the ALPR Administrator has lapsed. Ask for it to be renewed.',
  role_forbidden: 'Your role does not allow this. Ask the ALPR Administrator if you believe it should.',
};

/** An error from the API, explained: its sentence and its code. */
export function problem(err, intro) {
  return h('div', { class: 'problem', role: 'alert' },
    intro ? h('strong', {}, intro + ' ') : null,
    err.message || String(err),
    err.code ? h('span', { class: 'code' }, ` (${err.code})`) : null);
}

/** A labelled form control; `hint` is announced with it. */
let fieldSeq = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function input(name, attrs = {}) {
  return h('input', { name, type: 'text', autocomplete: 'off', ...attrs });
}

export function select(name, options, value) {
  return h('select', { name }, options.map(([v, label]) =>
    h('option', { value: v, selected: v === value ? 'selected' : null }, label)));
}

/** The values of a form's named controls (checkboxes as booleans). */
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
  }
  return out;
}

/**
 * A table. `columns` are [label, row => cell] pairs (a third element
 * `'rowheader'` makes that column name its row); an empty list shows
 * `empty` instead. Each cell carries its column's label, for layouts
 * that stack a row's cells on a phone.
 */
export function table(columns, rows, empty = 'Nothing to show.', rowAttrs) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
      columns.map(([label, cell, kind]) => (kind === 'rowheader' ? h('th', { scope: 'row' }, cell(r)) : h('td', { 'data-label': label || null }, cell(r)))))))));
}

/** The short name of this computer's zone at `d` (`PST`, `PDT`, `UTC`). */
function zoneAt(d) {
  try {
    const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName');
    return part ? part.value : '';
  } catch { return ''; }
}

/**
 * `2026-11-22T18:04:05Z` → local `2026-11-22 10:04:05 PST`: every time
 * shown says its zone (issue 23 item 9; the agency's own computers keep
 * the agency's zone).
 */
export function when(iso) {
  if (iso === null || iso === undefined || iso === '') return '';
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  const zone = zoneAt(d);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${zone ? ` ${zone}` : ''}`;
}

/** `2026-11-22T18:04:05Z` → `2026-11-22 18:04 UTC`, as reports give times. */
export function utcWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * A log entry's or finding's details as fields (name: value), not raw
 * JSON; a list of read ids folds away behind its count.
 */
export function fields(d) {
  if (d === null || d === undefined) return '';
  if (typeof d !== 'object' || Array.isArray(d)) return fieldText(d);
  const rows = [];
  for (const [k, v] of Object.entries(d)) {
    const name = k.replace(/_/g, ' ');
    if (k === 'reads' && Array.isArray(v)) {
      rows.push(h('dt', {}, name), h('dd', {}, v.length
        ? h('details', {}, h('summary', {}, `${v.length} read id${v.length === 1 ? '' : 's'}`), h('code', {}, v.join(' ')))
        : 'none'));
    } else {
      rows.push(h('dt', {}, name), h('dd', {}, fieldText(v)));
    }
  }
  return h('dl', { class: 'fields' }, rows);
}

function fieldText(v) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.length ? v.map(fieldText).join(', ') : 'none';
  if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k.replace(/_/g, ' ')}: ${fieldText(x)}`).join('; ');
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) return when(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** Local `datetime-local` input value → RFC 3339 UTC, or undefined. */
export function toUtc(local) {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A Date → the `datetime-local` value for it. */
export function localValue(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Asks a question in a dialog of the page rather than the browser's own
 * `confirm`/`prompt`, which kiosk and in-car browsers may suppress, which
 * cannot say that an answer is required, and which look like another
 * site's. With `answer` (the label of a text box) it asks for text, and
 * `required` makes that text needed; `value` fills it in first.
 * Resolves to the text (or `true`) when the person presses `yes`, and
 * to `null` when they cancel (Cancel or Escape).
 */
export function ask(question, { answer, value, required = false, yes = 'OK', danger = false } = {}) {
  return new Promise((resolve) => {
    const text = answer ? input('answer', { required, maxlength: '500', value }) : null;
    const q = h('p', { id: `ask${++fieldSeq}` }, question);
    const dlg = h('dialog', { class: 'ask-dialog', 'aria-labelledby': q.id });
    put(dlg, h('form', { method: 'dialog' },
      q,
      text ? field(answer, text, required ? 'Required.' : 'Optional.') : null,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', value: 'yes', class: danger ? 'danger' : 'primary' }, yes),
        h('button', { type: 'button', onclick: () => dlg.close('no') }, 'Cancel'))));
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (dlg.returnValue !== 'yes') resolve(null);
      else resolve(text ? text.value.trim() : true);
    });
    document.body.append(dlg);
    dlg.showModal();
    (text || dlg.querySelector('button')).focus();
  });
}

/** Saves a blob as a file. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Disables a form's button while `work` runs, so nothing is sent twice. */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute('aria-busy');
  }
}

/**
 * Handles a form's submission: its values go to `work`, its buttons are
 * disabled meanwhile, and a failure is shown in `out` after `failure`.
 */
export function submit(form, out, failure, work) {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = values(form);
    busy(form, async () => {
      try {
        await work(v);
      } catch (err) {
        if (err.name !== 'AbortError') put(out, problem(err, failure));
      }
    });
  });
}
