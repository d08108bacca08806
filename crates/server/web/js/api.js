// The JSON API, as the interface uses it. The session token is kept in
// sessionStorage (gone when the tab closes) and sent in the
// Authorization header; nothing is kept in cookies.

const KEY = 'platekeeper.session';

export class ApiError extends Error {
  constructor(status, code, message, detail, error) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
    // The whole error object, for codes that carry more (the weakenings
    // of a policy change that needs confirming).
    this.error = error || {};
  }
}

export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
  },
  set(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); },
  clear() { sessionStorage.removeItem(KEY); },
};

function authHeaders() {
  const s = session.get();
  return s && s.token ? { authorization: `Bearer ${s.token}` } : {};
}

/** Tells the app a signed-in session stopped working (expired, ended). */
function sessionEnded(err) {
  session.clear();
  window.dispatchEvent(new CustomEvent('session-ended', { detail: err }));
}

async function failure(res) {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status} ${res.statusText}.`;
  let detail;
  let error;
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message, detail } = error = body.error);
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(res.status, code, message, detail, error);
}

/**
 * Calls the API. `body` is sent as JSON unless it is a string or Blob
 * (then as `opts.type`). Resolves to the parsed answer, or to
 * `{blob, filename}` with `opts.blob`; rejects with an ApiError.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { ...authHeaders() };
  let payload;
  if (typeof body === 'string' || body instanceof Blob) {
    payload = body;
    headers['content-type'] = opts.type || 'text/plain';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal: opts.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server cannot be reached. Check the connection and try again.');
  }
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && headers.authorization) sessionEnded(err);
    throw err;
  }
  if (opts.blob) {
    const cd = res.headers.get('content-disposition') || '';
    const m = /filename="?([^";]+)"?/.exec(cd);
    return { blob: await res.blob(), filename: m ? m[1] : opts.filename || 'download' };
  }
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/**
 * Saves a package through a one-time download link: the browser fetches
 * it by navigation and writes it to disk as it arrives, where a fetch
 * with the Authorization header would hold the whole file (gigabytes,
 * for a large hold) in the tab's memory first. The server makes the
 * export's checks when the link is asked for, so a refusal is thrown
 * here; the link is good once, for two minutes, for this session only.
 */
export async function saveThroughLink(target) {
  const { url } = await api('POST', '/api/v1/download-links', target);
  const a = document.createElement('a');
  a.href = url;
  a.download = '';
  document.body.append(a);
  a.click();
  a.remove();
}

/** Fetches an image that needs the session (thumbnails) as an object URL. */
export async function imageUrl(path, signal) {
  const { blob } = await api('GET', path, undefined, { blob: true, signal });
  return URL.createObjectURL(blob);
}

/**
 * Reads a Server-Sent Events stream with fetch, so the Authorization
 * header can be sent (EventSource cannot send headers). Calls
 * `onOpen()` once connected and `onEvent(type, data)` per event;
 * resolves when the stream ends.
 */
export async function streamEvents(path, onEvent, signal, onOpen) {
  const res = await fetch(path, { headers: { ...authHeaders(), accept: 'text/event-stream' }, signal });
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401) sessionEnded(err);
    throw err;
  }
  if (onOpen) onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let type = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'event') type = val;
        else if (name === 'data') data.push(val);
      }
      if (data.length) onEvent(type, data.join('\n'));
    }
    if (buf.length > 1_000_000) throw new ApiError(0, 'stream_too_large', 'An event from the server was too large.');
  }
}
