// End-to-end test of single sign-on in Chromium: the REAL server against a REAL OpenID Connect
// provider.
//
// Microsoft Entra ID itself cannot be reached from here (no network, no tenant), so the
// `oidc-provider` package (a certified, standards-compliant OpenID Connect provider) stands in
// for it on 127.0.0.1: discovery, signed ID tokens (RS256, verified against its JWKS), the
// authorization code flow with PKCE required, and its built-in login and consent pages
// (devInteractions: any login name, any password). The server talks to it exactly as it
// would to Entra ID: only the issuer URL differs.
//
//   npm --prefix dashboard run build && cargo build -p gururmm-server
//   node dashboard/e2e/sso.mjs
//
// Steps: the sign-in page offers "Sign in with Test IdP"; alice (no group) signs in at the
// provider and lands in the dashboard signed in, created with the default role (viewer);
// bob, in a group mapped to admin, becomes an admin; a callback whose `state` was tampered
// with is refused with 400 and no session; the one-time code cannot be used twice.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Provider from 'oidc-provider';
import { DASHBOARD, LOGS, ROOT, SERVER_BIN, SHOTS, STEP_TIMEOUT, freePort, launchChromium, processStarter, stopProcess, waitFor } from './lib.mjs';

const HEADED = process.argv.includes('--headed');
const ADMIN_EMAIL = 'admin@example.test';
const ADMIN_PASSWORD = 'e2e-Password-1234';
const CLIENT_ID = 'gururmm';
const CLIENT_SECRET = 'e2e-client-secret-0123456789abcdef';
const DISPLAY_NAME = 'Test IdP';
const ADMIN_GROUP = 'rmm-admins';
// The provider's users: claims as Entra ID would send them with the email and groups claims.
const ACCOUNTS = {
  alice: { email: 'alice@example.test', email_verified: true, groups: ['staff'] },
  bob: { email: 'bob@example.test', email_verified: true, groups: ['staff', ADMIN_GROUP] },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gururmm-sso-e2e-'));
let passed = 0;
let failed = 0;

function log(msg) {
  console.log(`[sso-e2e] ${msg}`);
}

const { start: startProcess, children } = processStarter(log);

/** oidc-provider on a loopback port, with our server's callback registered. */
async function startProvider(callback) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [callback],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // PKCE is required of every client here: the server must send an S256 challenge.
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    // Entra ID puts email and groups into the ID token; so does this provider.
    conformIdTokenClaims: false,
    claims: { openid: ['sub', 'groups'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['e2e-cookie-key-0123456789'] },
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, name: id, ...account }) };
    },
  });
  provider.on('server_error', (_ctx, e) => log(`provider error: ${e.stack ?? e}`));
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { issuer, close: () => new Promise((r) => server.close(r)) };
}

async function startServer(provider, port) {
  const base = `http://127.0.0.1:${port}`;
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run \`cargo build -p gururmm-server\` first`);
  const dataDir = path.join(tmp, 'server-data');
  fs.mkdirSync(dataDir);
  const env = {
    GURURMM_LISTEN: `127.0.0.1:${port}`,
    GURURMM_DATA_DIR: dataDir,
    GURURMM_DASHBOARD_DIR: path.join(DASHBOARD, 'dist'),
    GURURMM_OIDC_ISSUER: provider.issuer,
    GURURMM_OIDC_CLIENT_ID: CLIENT_ID,
    GURURMM_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    GURURMM_OIDC_REDIRECT_URL: `${base}/api/auth/oidc/callback`,
    GURURMM_OIDC_DISPLAY_NAME: DISPLAY_NAME,
    GURURMM_OIDC_DEFAULT_ROLE: 'viewer',
    GURURMM_OIDC_GROUP_ROLES: `${ADMIN_GROUP}=admin`,
    RUST_LOG: process.env.RUST_LOG ?? 'info',
  };
  const add = spawnSync(SERVER_BIN, ['user', 'add', '--email', ADMIN_EMAIL, '--password', ADMIN_PASSWORD, '--role', 'admin'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (add.status !== 0) throw new Error(`gururmm-server user add failed (${add.status}): ${add.stderr || add.stdout}`);
  const server = startProcess('sso-server', SERVER_BIN, [], env);
  await waitFor('the server to answer', async () => {
    if (server.exitCode !== null) throw new Error('the server exited; see artifacts/e2e/sso-server.log');
    return (await fetch(`${base}/api/auth/me`)).status === 401;
  });
  return { base, stop: () => stopProcess(server) };
}

async function adminToken(base) {
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  if (!res.ok) throw new Error(`admin sign-in: ${res.status}`);
  return (await res.json()).token;
}

/** The user as the API lists it (to an admin). */
async function userByEmail(base, email) {
  const token = await adminToken(base);
  const res = await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${token}` } });
  const users = await res.json();
  return users.find((u) => u.email === email);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  fs.mkdirSync(LOGS, { recursive: true });
  if (!fs.existsSync(path.join(DASHBOARD, 'dist', 'index.html'))) throw new Error('dashboard/dist is missing: npm --prefix dashboard run build');
  const serverPort = await freePort();
  const provider = await startProvider(`http://127.0.0.1:${serverPort}/api/auth/oidc/callback`);
  log(`OpenID Connect provider at ${provider.issuer}`);
  const backend = await startServer(provider, serverPort);
  log(`server at ${backend.base}`);
  const context = await launchChromium(path.join(tmp, 'chromium-profile'), { headed: HEADED });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  /** From the dashboard's sign-in page through the provider's login and consent pages. */
  async function signInAtProvider(login) {
    // A fresh provider session each time (as another person on another machine would be).
    await context.clearCookies();
    await page.goto(`${backend.base}/`);
    const button = page.getByRole('link', { name: `Sign in with ${DISPLAY_NAME}` });
    await button.click();
    await page.waitForURL((u) => u.toString().startsWith(provider.issuer));
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any-password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    // The consent page, the first time this user meets the client.
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  const steps = [];
  const step = (name, fn) => steps.push({ name, fn });

  step('the sign-in page offers single sign-on beside the password form', async () => {
    const providers = await (await fetch(`${backend.base}/api/auth/providers`)).json();
    if (providers.oidc?.display_name !== DISPLAY_NAME) throw new Error(`providers: ${JSON.stringify(providers)}`);
    await page.goto(`${backend.base}/`);
    await page.getByRole('link', { name: `Sign in with ${DISPLAY_NAME}` }).waitFor();
    await page.getByLabel('Email').waitFor();
    await page.getByLabel('Password').waitFor();
    await shot('sso-01-login');
  });

  step('alice signs in at the provider and is created with the default role', async () => {
    await signInAtProvider('alice');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    const who = (await page.locator('.who .user').textContent()).trim();
    if (who !== ACCOUNTS.alice.email) throw new Error(`signed in as "${who}"`);
    if ((await page.locator('.who .role').textContent()).trim() !== '(viewer)') throw new Error('not shown as a viewer');
    // The one-time code is gone from the address, and no token is in it.
    if (page.url().includes('code=') || page.url().includes('token')) throw new Error(`address keeps the code: ${page.url()}`);
    const alice = await userByEmail(backend.base, ACCOUNTS.alice.email);
    if (!alice || alice.role !== 'viewer') throw new Error(`alice as listed: ${JSON.stringify(alice)}`);
    // The session works for the API, as a viewer: reading yes, changing no.
    const token = await page.evaluate(() => JSON.parse(localStorage.getItem('gururmm.session')).token);
    const me = await fetch(`${backend.base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    if (me.status !== 200 || (await me.json()).email !== ACCOUNTS.alice.email) throw new Error('GET /api/auth/me with the SSO session');
    const create = await fetch(`${backend.base}/api/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'not allowed' }),
    });
    if (create.status !== 403) throw new Error(`a viewer created a client: ${create.status}`);
    await shot('sso-02-alice-signed-in');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: `Sign in with ${DISPLAY_NAME}` }).waitFor();
  });

  step('bob, in a group mapped to admin, signs in as an admin', async () => {
    await signInAtProvider('bob');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    if ((await page.locator('.who .user').textContent()).trim() !== ACCOUNTS.bob.email) throw new Error('not bob');
    if ((await page.locator('.who .role').textContent()).trim() !== '(admin)') throw new Error('bob is not shown as an admin');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('cell', { name: ACCOUNTS.alice.email }).waitFor();
    const bob = await userByEmail(backend.base, ACCOUNTS.bob.email);
    if (!bob || bob.role !== 'admin') throw new Error(`bob as listed: ${JSON.stringify(bob)}`);
    await shot('sso-03-bob-admin');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: `Sign in with ${DISPLAY_NAME}` }).waitFor();
  });

  step('a callback with a tampered state is refused with 400, and no session starts', async () => {
    // The provider's real redirect, with its real code, but another `state`. A redirect the
    // browser follows is not routed itself, so the provider's own hops (`/auth/...`) are
    // followed here until its redirect to the callback shows, which is rewritten.
    const callbackUrl = `${backend.base}/api/auth/oidc/callback`;
    await page.route(`${provider.issuer}/**`, async (route) => {
      let response = await route.fetch({ maxRedirects: 0 });
      let location = response.headers()['location'] ?? '';
      while (location.startsWith(`${provider.issuer}/auth/`)) {
        response = await page.request.get(location, { maxRedirects: 0 });
        location = response.headers()['location'] ?? '';
      }
      if (!location.startsWith(callbackUrl)) {
        return location ? route.fulfill({ status: 303, headers: { location } }) : route.fulfill({ response });
      }
      const url = new URL(location);
      url.searchParams.set('state', 'tampered-state');
      return route.fulfill({ status: 303, headers: { location: url.toString() } });
    });
    const answer = page.waitForResponse((r) => r.url().includes('/api/auth/oidc/callback'));
    await context.clearCookies();
    await page.goto(`${backend.base}/`);
    await page.getByRole('link', { name: `Sign in with ${DISPLAY_NAME}` }).click();
    await page.waitForURL((u) => u.toString().startsWith(provider.issuer));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any-password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    const consent = page.getByRole('button', { name: 'Continue' });
    await consent.click();
    const res = await answer;
    if (res.status() !== 400) throw new Error(`tampered callback answered ${res.status()}`);
    const body = await res.json();
    if (!/state/.test(body.error)) throw new Error(`error does not name the state: ${JSON.stringify(body)}`);
    log(`tampered state says: "${body.error}"`);
    await page.unroute(`${provider.issuer}/**`);
    const stored = await page.evaluate(() => localStorage.getItem('gururmm.session'));
    if (stored) throw new Error('a session was stored');
    // Directly, too: an unknown state, and a missing one.
    for (const q of ['?code=x&state=never-issued', '?code=x']) {
      const r = await fetch(`${backend.base}/api/auth/oidc/callback${q}`, { redirect: 'manual' });
      if (r.status !== 400 || !(await r.json()).error) throw new Error(`callback${q}: ${r.status}`);
    }
  });

  step('the hand-off code works once', async () => {
    // Catch the redirect to the dashboard and use its code twice, outside the page.
    let code = null;
    page.on('framenavigated', (f) => {
      const m = /#\/sso\?code=([0-9a-f]+)/.exec(f.url());
      if (m) code = m[1];
    });
    await signInAtProvider('alice');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    if (!code) throw new Error('no hand-off code seen');
    const again = await fetch(`${backend.base}/api/auth/oidc/exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    if (again.status !== 400) throw new Error(`a used code answered ${again.status}`);
  });

  try {
    for (const s of steps) {
      const t0 = Date.now();
      try {
        await s.fn();
        passed += 1;
        log(`ok   ${s.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed += 1;
        log(`FAIL ${s.name}: ${e.message}`);
        await shot(`FAILED-sso-${String(passed + failed).padStart(2, '0')}`).catch(() => {});
        break; // the steps build on each other
      }
    }
  } finally {
    const cspViolations = consoleErrors.filter((e) => e.includes('Content Security Policy'));
    if (cspViolations.length) {
      log(`FAIL content security policy violations: ${cspViolations.join(' | ')}`);
      failed += 1;
    }
    await context.close().catch(() => {});
    await backend.stop();
    await provider.close();
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
    console.log(`sso e2e: ${passed} passed, ${failed + steps.length - passed - failed} failed`);
  }
  return failed === 0 && passed === steps.length;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(`[sso-e2e] ${e.stack ?? e}`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  },
);
