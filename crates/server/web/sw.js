// The installable shell (issue 23 item 2). Only the interface's own files
// (the page, its script, style and icon) are kept on the device, so it
// starts without a connection. Nothing the API answers — no plate, read,
// picture, alert or account — is ever stored here: those requests pass
// straight to the network and fail when it is down.

const SHELL = 'platekeeper-shell-v1';
const FILES = [
  '/',
  '/assets/app.css',
  '/assets/favicon.svg',
  '/assets/js/app.js',
  '/assets/js/api.js',
  '/assets/js/dom.js',
  '/assets/js/map.js',
  '/assets/js/geocode.js',
  '/assets/js/signin.js',
  '/assets/js/search.js',
  '/assets/js/alerts.js',
  '/assets/js/alertwatch.js',
  '/assets/js/hotlists.js',
  '/assets/js/admin.js',
  '/assets/js/devices.js',
  '/assets/js/passkeys.js',
  '/assets/js/sharing.js',
  '/assets/js/records.js',
  '/assets/js/audit.js',
];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

/** The shell's own files: the page itself and /assets/. */
function isShell(url) {
  return url.origin === self.location.origin && (url.pathname === '/' || url.pathname.startsWith('/assets/'));
}

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  // Everything else (the API above all) is not touched: network only.
  if (e.request.method !== 'GET' || !isShell(url)) return;
  // The network first, so an updated server is used at once; the kept
  // copy only when the network fails.
  e.respondWith(fetch(e.request)
    .then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(SHELL).then((c) => c.put(url.pathname, copy));
      }
      return res;
    })
    .catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())));
});
