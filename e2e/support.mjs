// What the browser tests share (issue 7; issue 23 item 8): a real
// `platekeeper demo` server for the file that calls `demoServer()`, the
// demo's printed logins, a fresh browser profile per test that records
// every request it makes, sign-in with TOTP codes, and screenshots into
// docs/screenshots/. `base`, `demo` and `browser` are set once the server
// is up (live bindings: read them inside a test, not at import).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { deflateSync, crc32 } from 'node:zlib';
import { chromium } from 'playwright-core';

export const SHOTS = new URL('../docs/screenshots/', import.meta.url).pathname;
const BIN = process.env.PLATEKEEPER_BIN;
let server;
export let base;
export let demo;
export let browser;

/** RFC 6238: SHA-1, 30 s, 6 digits. */
export function totp(secret, t = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[19] & 0xf;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** A code for the next 30-second step (a code is good only once). */
export async function freshTotp(secret, used) {
  for (;;) {
    const code = totp(secret);
    if (!used.has(code)) { used.add(code); return code; }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Starts a `platekeeper demo` server with `reads` sample reads before the
 * file's tests, and a headless Chromium; stops both after them.
 */
export function demoServer({ reads = 30000 } = {}) {
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = spawn(BIN, ['demo', '--reads', String(reads), '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 240_000);
      server.stdout.on('data', (d) => {
        out += d;
        const m = /Demo server listening on (http:\/\/[\d.:]+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      server.on('exit', (code) => reject(new Error(`demo exited ${code}:\n${out}`)));
    });
    const login = (name) => new RegExp(`^\\s+${name}\\s+\\(\\w+\\)\\s+(?:one-time )?password (\\S+)\\s+TOTP secret (\\S+)`, 'm').exec(out);
    demo = {
      admin: login('admin'), officer: login('officer'), auditor: login('auditor'),
      cameraKey: /authorization: Bearer (\S+)' -H 'content-type: application\/json' \\\n\s+-d '\{"reads"/.exec(out)[1],
      plate: /-d '\{"plate": "([A-Z0-9]+)", "purpose"/.exec(out)[1],
      used: { admin: new Set(), officer: new Set(), auditor: new Set() },
    };
    for (const k of ['admin', 'officer', 'auditor']) assert.ok(demo[k], `demo printed no ${k} login:\n${out}`);
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) server.kill('SIGTERM');
  });
}

/**
 * Runs `fn` with a fresh browser profile that records every request it
 * makes; on failure the page is saved to failures/ for a look.
 */
export async function withPage(name, viewport, fn) {
  const page = await newPage(viewport);
  try {
    await fn(page);
  } catch (e) {
    mkdirSync(new URL('failures/', import.meta.url).pathname, { recursive: true });
    await page.screenshot({ path: new URL(`failures/${name}.png`, import.meta.url).pathname }).catch(() => {});
    throw e;
  } finally {
    await page.context().close();
  }
}

export async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.requests = [];
  page.on('request', (r) => page.requests.push(r.url()));
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return page;
}

export async function signIn(page, who, password) {
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(who);
  await page.getByLabel('Password', { exact: true }).fill(password);
  const code = await freshTotp(demo[who][2], demo.used[who]);
  await page.getByLabel('Authenticator code').fill(code);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#who .me').waitFor();
}

/**
 * The demo administrator's first sign-in: the printed one-time password
 * and a TOTP code, then a password of their own (kept in
 * `demo.adminPassword` for later sign-ins).
 */
export async function enrolAdmin(page, password = 'correct horse battery staple 26') {
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(demo.admin[1]);
  await page.getByLabel('Authenticator code').fill(await freshTotp(demo.admin[2], demo.used.admin));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
  await page.getByLabel('New password', { exact: true }).fill(password);
  await page.getByLabel('New password again').fill(password);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.locator('#who .me').waitFor();
  demo.adminPassword = password;
}

/** Calls the API from the page, with its session: `{status, body}`. */
export async function apiAs(page, method, path, body) {
  return page.evaluate(async ([m, p, b]) => {
    const s = JSON.parse(sessionStorage.getItem('platekeeper.session'));
    const res = await fetch(p, { method: m, headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: b === null ? undefined : JSON.stringify(b) });
    return { status: res.status, body: await res.json().catch(() => null) };
  }, [method, path, body === undefined ? null : body]);
}

/** Requests a page made to any host but the server (none are allowed). */
export const foreignRequests = (page) => page.requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));

/** A small real PNG (a grey picture with a dark band), for a read's image. */
export function png(width = 160, height = 90) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 0; // 8-bit greyscale
  const rows = [];
  for (let y = 0; y < height; y++) rows.push(Buffer.from([0]), Buffer.alloc(width, y > 35 && y < 55 ? 40 : 200));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

export async function sendRead(read) {
  const res = await fetch(`${base}/api/v1/reads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${demo.cameraKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reads: [{ id: randomUUID(), ts: new Date(Date.now() - 5_000).toISOString().replace(/\.\d+Z$/, 'Z'), lat: 37.8044, lon: -122.2712, ...read }] }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.accepted, 1, JSON.stringify(body));
}

/** Bytes of the interface's own files one page load fetched (`sent`: as they crossed the wire). */
export async function pageWeight(page, sent = false) {
  return page.evaluate((key) => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
    .filter((e) => !e.name.includes('/api/'))
    .reduce((n, e) => n + (e[key] || 0), 0), sent ? 'encodedBodySize' : 'decodedBodySize');
}

export const localValue = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

export async function fillPurpose(page, caseNumber, offense, reason) {
  await page.getByLabel('Case or incident number').fill(caseNumber);
  await page.getByLabel('Offense').fill(offense);
  await page.getByLabel('Reason').fill(reason);
}

export const shot = (page, name) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: false });
