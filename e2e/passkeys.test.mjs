// Passkeys in a real browser (issue 24 item 4): Chromium's virtual
// authenticator (the DevTools WebAuthn domain) stands in for a phone or
// a laptop's fingerprint reader. The officer adds a passkey on the
// Account page and signs in with it; once the policy holds officers to
// passkeys, a code is refused on the sign-in page with the reason.
// Passkeys are bound to a host name, so this file opens the demo at
// `localhost` (an IP address cannot carry one).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoServer, base, demo, withPage, enrolAdmin, apiAs, freshTotp, shot } from './support.mjs';

demoServer({ reads: 5000 });

const local = () => base.replace('127.0.0.1', 'localhost');

async function virtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}

async function fillSignIn(page, who, password) {
  await page.goto(`${local()}/`);
  await page.getByLabel('Username').fill(who);
  await page.getByLabel('Password', { exact: true }).fill(password);
}

test('an officer adds a passkey, signs in with it, and is held to it once the policy says so', async () => withPage('passkeys', undefined, async (page) => {
  const { cdp, authenticatorId } = await virtualAuthenticator(page);

  // Signed in with a code, the officer adds a passkey on the Account page.
  await fillSignIn(page, 'officer', demo.officer[1]);
  await page.getByLabel('Authenticator code').fill(await freshTotp(demo.officer[2], demo.used.officer));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#who .me').waitFor();
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.getByText('No passkeys yet.').waitFor();
  await page.getByLabel('Name').fill('patrol laptop');
  await page.getByRole('button', { name: 'Add passkey' }).click();
  await page.getByRole('cell', { name: 'patrol laptop' }).waitFor();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
  assert.equal(credentials[0].rpId, 'localhost');
  await shot(page, 'passkeys');
  await page.getByRole('button', { name: 'Sign out' }).click();

  // The password, then the passkey instead of a code.
  await fillSignIn(page, 'officer', demo.officer[1]);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.locator('#who .me').waitFor();
  const mine = await apiAs(page, 'GET', '/api/v1/me/passkeys');
  assert.equal(mine.status, 200);
  assert.ok(mine.body.passkeys[0].last_used_at, 'the sign-in used the passkey');
  const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0];
  assert.ok(after.signCount >= 1, 'the authenticator signed');
  await page.getByRole('button', { name: 'Sign out' }).click();

  // The administrator holds officers to passkeys (a new page: the admin
  // signs in at the demo's own address).
  await withPage('passkeys-admin', undefined, async (adminPage) => {
    await enrolAdmin(adminPage);
    const policy = (await apiAs(adminPage, 'GET', '/api/v1/policy')).body;
    policy.accounts.passkey_roles = ['officer'];
    const saved = await apiAs(adminPage, 'PUT', '/api/v1/policy', policy);
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    // The Users page shows the officer's passkey and offers its removal.
    await adminPage.goto(`${base}/#/users`);
    await adminPage.getByRole('button', { name: 'officer', exact: true }).click();
    await adminPage.getByRole('button', { name: 'Remove passkeys (1)' }).waitFor();
  });

  // A code is now refused, and the page says to use the passkey.
  await fillSignIn(page, 'officer', demo.officer[1]);
  await page.getByLabel('Authenticator code').fill(await freshTotp(demo.officer[2], demo.used.officer));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText(/sign in with your passkey/i).first().waitFor();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.locator('#who .me').waitFor();
  assert.deepEqual(page.errors, []);
}));
