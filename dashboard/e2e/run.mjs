// End-to-end test of the dashboard in Chromium against the REAL server with a REAL agent.
//
//   cargo build -p gururmm-server -p gururmm-agent     (from the repository root)
//   npm --prefix dashboard run build                    (dashboard/dist, served by the server)
//   node dashboard/e2e/run.mjs
//
// It starts target/debug/gururmm-server on a free loopback port with a fresh data folder,
// creates an administrator with `gururmm-server user add`, drives /usr/bin/chromium through
// playwright-core: log in, create a client and a site, read the site code from the page, start
// target/debug/gururmm-agent with it, see the agent come online without a reload, run
// `echo hello-from-e2e` and read its output, find it in the commands list, watch a five-second
// loop's lines arrive live (also in a second tab opened in the middle) and end as the stored
// text, keep a 1 MB output in a bounded box and download it whole (also from the list's
// 500-character preview), see claude_task refused for an agent without it, stop the agent and
// see it go offline without a reload, look at every other page (also dark and narrow), log out
// (and check the server refuses the old token), and check that an invalid session returns to
// the login page. The live updates come through the ticket-based event stream.
// A screenshot of each page goes to artifacts/screenshots/; logs to artifacts/e2e/.
//
// Environment: GURURMM_SERVER_BIN, GURURMM_AGENT_BIN (default $CARGO_TARGET_DIR/debug/..., else
// target/debug/...), CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 keeps the temporary folder,
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  AGENT_BIN, DASHBOARD, LOGS, ROOT, SERVER_BIN, SHOTS, STEP_TIMEOUT,
  freePort, launchChromium, processStarter, stopProcess, waitFor,
} from './lib.mjs';

const HEADED = process.argv.includes('--headed');

const ADMIN_EMAIL = 'admin@example.test';
const ADMIN_PASSWORD = 'e2e-Password-1234';
const MARKER = 'hello-from-e2e';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gururmm-e2e-'));
let passed = 0;
let failed = 0;

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) an authenticator app shows for a base32 key. */
function totpCode(base32, offsetSteps = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) key.push(parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offsetSteps));
  const h = crypto.createHmac('sha1', Buffer.from(key)).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  const n = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1_000_000;
  return String(n).padStart(6, '0');
}

function log(msg) {
  console.log(`[e2e] ${msg}`);
}

const { start: startProcess, children } = processStarter(log);

/** Starts the real server and returns its base URL and an "agent starter". */
async function startBackend() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  for (const bin of [SERVER_BIN, AGENT_BIN]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p gururmm-server -p gururmm-agent\` first`);
  }
  const dataDir = path.join(tmp, 'server-data');
  fs.mkdirSync(dataDir);
  const env = {
    GURURMM_LISTEN: `127.0.0.1:${port}`,
    GURURMM_DATA_DIR: dataDir,
    GURURMM_DASHBOARD_DIR: path.join(DASHBOARD, 'dist'),
    RUST_LOG: process.env.RUST_LOG ?? 'info',
  };
  const add = spawnSync(SERVER_BIN, ['user', 'add', '--email', ADMIN_EMAIL, '--password', ADMIN_PASSWORD, '--role', 'admin'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  fs.writeFileSync(path.join(LOGS, 'user-add.log'), `${add.stdout ?? ''}${add.stderr ?? ''}`);
  if (add.status !== 0) throw new Error(`gururmm-server user add failed (${add.status}): ${add.stderr || add.stdout}`);

  // A release key before the server starts (it reads release.pub then), as serve.sh does.
  const keygen = spawnSync(SERVER_BIN, ['release', 'keygen', '--out', path.join(dataDir, 'release')], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (keygen.status !== 0) throw new Error(`release keygen failed: ${keygen.stderr}`);
  const server = startProcess('server', SERVER_BIN, [], env);
  await waitFor('the server to answer', async () => {
    if (server.exitCode !== null) throw new Error('the server exited; see artifacts/e2e/server.log');
    const res = await fetch(`${base}/api/auth/me`);
    return res.status === 401;
  });
  return {
    base,
    stop: () => stopProcess(server),
    /** Publishes the agent binary as linux/x86_64 `version`, signed with the key made above. */
    publish: (version) => {
      const add = spawnSync(
        SERVER_BIN,
        ['release', 'add', '--file', AGENT_BIN, '--version', version, '--os', 'linux', '--arch', 'x86_64', '--key', path.join(dataDir, 'release.key')],
        { env: { ...process.env, ...env }, encoding: 'utf8' },
      );
      if (add.status !== 0) throw new Error(`release add failed: ${add.stderr}`);
    },
    /** `extra`: more agent.toml lines (a restart with the same state folder is the same agent). */
    startAgent: async (siteCode, extra = []) => {
      const config = path.join(tmp, 'agent.toml');
      fs.writeFileSync(
        config,
        [
          '[server]',
          `url = "ws://127.0.0.1:${port}/ws"`,
          `api_key = "${siteCode}"`,
          '',
          '[agent]',
          `state_dir = "${path.join(tmp, 'agent-state')}"`,
          `log_dir = "${path.join(tmp, 'agent-logs')}"`,
          'reconnect_delay_seconds = 1',
          '',
          '[metrics]',
          'interval_seconds = 10',
          '',
          ...extra,
        ].join('\n'),
      );
      const agent = startProcess('agent', AGENT_BIN, ['run', '--config', config], {});
      return { hostname: os.hostname(), stop: () => stopProcess(agent), process: agent };
    },
  };
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) if (f.endsWith('.png')) fs.rmSync(path.join(SHOTS, f));
  fs.mkdirSync(LOGS, { recursive: true });
  if (!fs.existsSync(path.join(DASHBOARD, 'dist', 'index.html'))) {
    log('dashboard/dist is missing: building it');
    const b = spawnSync('npx', ['vite', 'build'], { cwd: DASHBOARD, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('vite build failed');
  }

  const backend = await startBackend();
  log(`server at ${backend.base}`);
  let agent = null;
  const context = await launchChromium(path.join(tmp, 'chromium-profile'), { headed: HEADED });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));

  const shot = async (name, opts = {}) => {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true, ...opts });
  };
  const goto = async (label) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  };

  const steps = [];
  const step = (name, fn) => steps.push({ name, fn });
  const state = {};

  step('the login page shows, and a wrong password is refused in words', async () => {
    const response = await page.goto(`${backend.base}/`);
    // The app runs under the server's CSP (no inline script); a violation would be a console error.
    const csp = response?.headers()['content-security-policy'] ?? '';
    if (!csp.includes("script-src 'self'") || csp.includes('unsafe-inline')) throw new Error(`dashboard CSP: "${csp}"`);
    await page.getByLabel('Email').fill(ADMIN_EMAIL);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent())?.trim();
    if (!text) throw new Error('the error message is empty');
    log(`wrong password says: "${text}"`);
    await shot('01-login-error');
  });

  step('log in as the administrator with the keyboard only', async () => {
    await page.reload();
    await page.getByLabel('Email').waitFor();
    // The email field has focus on load; Tab moves to the password, Enter submits.
    await page.keyboard.type(ADMIN_EMAIL);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await page.locator('.live-open').waitFor();
    await shot('02-fleet-empty');
  });

  step('create a client', async () => {
    await goto('Clients & sites');
    await page.getByRole('heading', { name: 'Clients & sites' }).waitFor();
    await page.locator('#new-client-name').fill('E2E Client');
    await page.locator('#new-client-notes').fill('made by the browser test');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('cell', { name: 'E2E Client', exact: true }).waitFor();
  });

  step('edit and delete a client through their dialogs', async () => {
    await page.locator('#new-client-name').fill('Temporary client');
    await page.getByRole('button', { name: 'Create client' }).click();
    const row = page.getByRole('row').filter({ hasText: 'Temporary client' });
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit client Temporary client' });
    await edit.getByLabel('Name').fill('Renamed client');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('cell', { name: 'Renamed client', exact: true }).waitFor();
    const renamed = page.getByRole('row').filter({ hasText: 'Renamed client' });
    await renamed.getByRole('button', { name: 'Delete' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete client Renamed client?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await renamed.getByRole('button', { name: 'Delete' }).click();
    await confirm.getByRole('button', { name: 'Delete client' }).click();
    await renamed.waitFor({ state: 'detached' });
  });

  step('the server refusing a blank client name is shown in words', async () => {
    // An empty name passes the browser's own check only as spaces: the server must refuse it.
    await page.locator('#new-client-name').fill('   ');
    await page.getByRole('button', { name: 'Create client' }).click();
    const alert = page.locator('form.inline-form').first().getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()).trim();
    if (!text) throw new Error('the error is empty');
    log(`an empty client name says: "${text}"`);
    await page.locator('#new-client-name').fill('');
  });

  step('create a site and read its code from the page', async () => {
    await page.getByLabel('Client', { exact: true }).selectOption({ label: 'E2E Client' });
    await page.locator('#new-site-name').fill('E2E Site');
    await page.getByRole('button', { name: 'Create site' }).click();
    await page.getByRole('heading', { name: 'Site E2E Site' }).waitFor();
    const code = (await page.getByTestId('site-code').textContent())?.trim();
    if (!code || !/^[A-Z]+-[A-Z]+-\d+$/.test(code)) throw new Error(`unexpected site code "${code}"`);
    // Regenerating asks first; cancelling keeps the code, confirming replaces it.
    await page.getByRole('button', { name: 'Regenerate code' }).click();
    const dialog = page.getByRole('dialog', { name: 'Regenerate the site code?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    if ((await page.getByTestId('site-code').textContent()).trim() !== code) throw new Error('cancel changed the code');
    await page.getByRole('button', { name: 'Regenerate code' }).click();
    await dialog.getByRole('button', { name: 'Regenerate' }).click();
    await waitFor('a new site code', async () => (await page.getByTestId('site-code').textContent()).trim() !== code);
    state.siteCode = (await page.getByTestId('site-code').textContent()).trim();
    log(`site code ${code} regenerated as ${state.siteCode}`);
    const linux = await page.locator('#install-linux').locator('xpath=../..').locator('pre').textContent();
    const wsUrl = backend.base.replace('http://', 'ws://') + '/ws';
    if (!linux.includes(state.siteCode) || !linux.includes(wsUrl) || !linux.includes('/etc/gururmm/agent.toml')) {
      throw new Error(`the Linux install commands lack the code or ${wsUrl}:\n${linux}`);
    }
    // Nothing is published yet: each OS says so, and how to publish, instead of a failing curl.
    for (const osName of ['linux', 'windows']) {
      const hint = await page.getByTestId(`publish-hint-${osName}`).textContent();
      if (!hint.includes('No ') || !hint.includes(`release add`) || !hint.includes(`--os ${osName}`)) throw new Error(`publish hint for ${osName}: ${hint}`);
    }
    await page.getByRole('button', { name: 'Copy site code' }).click();
    await page.getByText('Copied', { exact: true }).waitFor();
    // An install token instead of the site code: created here, put into the install commands.
    await page.locator('#token-uses').fill('2');
    await page.getByRole('button', { name: 'Create install token' }).click();
    const token = (await page.getByTestId('new-token').textContent()).trim();
    if (!/^grmt_[0-9a-f]{64}$/.test(token)) throw new Error(`unexpected token "${token}"`);
    const withToken = await page.locator('#install-linux').locator('xpath=../..').locator('pre').textContent();
    if (!withToken.includes(token) || withToken.includes(state.siteCode)) throw new Error(`the install commands do not use the token:\n${withToken}`);
    await page.getByRole('cell', { name: '0 of 2' }).waitFor();
    await shot('03-site');
    await goto('Clients & sites');
    await page.getByRole('link', { name: 'E2E Site' }).waitFor();
    await shot('04-clients-and-sites');
  });

  step('start the agent with the site code and see it come online without a reload', async () => {
    await goto('Fleet');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await page.evaluate(() => {
      window.__e2eNoReload = true;
    });
    agent = await backend.startAgent(state.siteCode);
    state.hostname = agent.hostname;
    const row = page.locator('tr[data-agent-id]').filter({ has: page.locator('.badge-online') });
    await waitFor('the agent to show online', async () => {
      if (agent.process && agent.process.exitCode !== null) throw new Error('the agent exited; see artifacts/e2e/agent.log');
      return (await row.count()) > 0;
    }, 45_000);
    if (!(await page.evaluate(() => window.__e2eNoReload === true))) throw new Error('the page was reloaded');
    state.agentId = await row.first().getAttribute('data-agent-id');
    state.hostname = (await row.first().locator('td a').first().textContent()).trim();
    const online = await page.locator('.stat.tone-online .stat-value').textContent();
    if (online.trim() !== '1') throw new Error(`the online count shows ${online}`);
    log(`agent ${state.hostname} (${state.agentId}) online`);
    await shot('05-fleet-agent-online');
  });

  step('the fleet filters and search narrow the table', async () => {
    await page.getByLabel('Search').fill('no-such-host-xyz');
    await page.getByText('Showing 0 of 1 agents').waitFor();
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Status').selectOption('offline');
    await page.getByText('Showing 0 of 1 agents').waitFor();
    await page.getByLabel('Status').selectOption('online');
    await page.getByText('Showing 1 of 1 agents').waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();
    // Sorting works from the keyboard: focus a column's header button, press Enter.
    const hostHeader = page.getByRole('columnheader', { name: /Hostname/ });
    if ((await hostHeader.getAttribute('aria-sort')) !== 'ascending') throw new Error('the table is not sorted by hostname at first');
    await hostHeader.getByRole('button').focus();
    await page.keyboard.press('Enter');
    await page.locator('th[aria-sort="descending"]').filter({ hasText: 'Hostname' }).waitFor();
    await page.keyboard.press('Enter');
    await page.locator('th[aria-sort="ascending"]').filter({ hasText: 'Hostname' }).waitFor();
  });

  step('a machine claiming to be the agent waits for approval, shown beside it, and is rejected', async () => {
    await page.goto(`${backend.base}/#/agents/${state.agentId}`);
    const deviceId = (await page.locator('dt', { hasText: 'Device id' }).locator('xpath=..').locator('dd code').textContent()).trim();
    const res = await fetch(`${backend.base}/api/agent/register-legacy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ site_code: state.siteCode, device_id: deviceId, hostname: 'impostor', os_info: { os_type: 'linux', os_version: 'x', arch: 'x86_64' }, version: '0.0.1' }),
    });
    if (res.status !== 201) throw new Error(`register-legacy answered ${res.status}`);
    await page.reload();
    const banner = page.getByTestId('claims-banner');
    await banner.getByRole('link', { name: 'impostor' }).waitFor();
    await goto('Fleet');
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    await page.getByTestId('pending-agent').filter({ hasText: 'impostor' }).waitFor();
    await page.getByText('Showing 1 of 1 agents').waitFor();
    await shot('05b-waiting-for-approval');
    await page.getByTestId('pending-agent').getByRole('button', { name: 'Reject' }).click();
    await page.getByRole('dialog', { name: 'Reject impostor?' }).getByRole('button', { name: 'Reject' }).click();
    await waitFor('the pending record to go', async () => (await page.getByTestId('pending-agent').count()) === 0);
  });

  step('an agent registered without a site is moved to one from the unassigned page', async () => {
    await goto('Unassigned');
    await page.getByRole('heading', { name: 'Unassigned agents' }).waitFor();
    // Register it by hand with no site; its grmm_ key is shown once.
    await page.getByLabel('Hostname').fill('e2e-unassigned-host');
    await page.getByRole('button', { name: 'Register agent' }).click();
    const key = (await page.getByTestId('issued-key').textContent()).trim();
    if (!key.startsWith('grmm_')) throw new Error(`the issued key is "${key}"`);
    const row = page.getByRole('row').filter({ hasText: 'e2e-unassigned-host' });
    await row.waitFor();
    await shot('10-unassigned');
    await row.getByLabel('Site for e2e-unassigned-host').selectOption({ label: 'E2E Client / E2E Site' });
    await row.getByRole('button', { name: 'Move' }).click();
    await page.getByText('Every agent belongs to a site.').waitFor();
    await goto('Fleet');
    await page.getByRole('row').filter({ hasText: 'e2e-unassigned-host' }).filter({ hasText: 'E2E Site' }).waitFor();
  });

  step('open the agent page', async () => {
    await page.getByRole('link', { name: state.hostname, exact: true }).first().click();
    await page.getByRole('heading', { name: state.hostname, level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'Metrics' }).waitFor();
    await page.getByRole('radio', { name: '24h' }).check();
    await page.getByRole('radio', { name: '1h' }).check();
    await shot('06-agent');
  });

  step('publish a build: the site page shows it; set a paused rollout on the updates page and see its progress', async () => {
    await page.getByRole('heading', { name: 'Updates' }).waitFor();
    await page.getByText('No update was sent to this agent.').waitFor();
    backend.publish('9.9.9');
    await goto('Clients & sites');
    await page.getByRole('link', { name: 'E2E Site' }).click();
    await page.getByTestId('build-linux').getByText('Build 9.9.9 is published').waitFor();
    if ((await page.getByTestId('publish-hint-linux').count()) !== 0) throw new Error('the Linux publish hint stayed');
    await page.getByTestId('publish-hint-windows').waitFor();
    await goto('Updates');
    await page.getByRole('heading', { name: 'Agent updates' }).waitFor();
    await page.getByText('No rollout yet').waitFor();
    await page.getByLabel('OS and architecture').selectOption('linux/x86_64');
    await page.getByLabel('Version', { exact: true }).selectOption('9.9.9');
    await page.getByLabel('Who', { exact: true }).selectOption('percentage');
    await page.getByLabel('Percent', { exact: true }).fill('25');
    await page.getByLabel('Paused (no new updates start)').check();
    await page.getByRole('button', { name: 'Save target' }).click();
    const row = page.getByTestId('rollout-linux-x86_64');
    await row.getByText('25% of agents').waitFor();
    await row.getByText('paused').waitFor();
    await page.getByTestId('progress-linux-x86_64').getByText('0 of 1 on 9.9.9 or newer', { exact: false }).waitFor();
    await page.getByRole('cell', { name: '9.9.9 (newest: install commands fetch it)' }).waitFor();
    await shot('06b-updates');
    await goto('Fleet');
    await page.getByRole('link', { name: state.hostname, exact: true }).first().click();
    await page.getByRole('heading', { name: state.hostname, level: 1 }).waitFor();
  });

  step(`run "echo ${MARKER}" on two agents from the console: read the output, cancel the queued one`, async () => {
    await page.getByRole('link', { name: 'Run a command' }).click();
    await page.getByRole('heading', { name: 'Command console' }).waitFor();
    await page.getByRole('button', { name: 'Run on 1 agent' }).waitFor();
    await page.getByLabel('Type').selectOption('shell');
    await page.getByLabel('Command', { exact: true }).fill(`echo ${MARKER}`);
    // Run on two agents: the connected one completes; the other (registered by hand, never
    // connected) stays pending and is cancelled from the console.
    await page.locator('.picker-list label').filter({ hasText: 'e2e-unassigned-host' }).locator('input').check();
    await page.getByRole('button', { name: 'Run on 2 agents' }).click();
    const run = page.locator('li.run').filter({ has: page.getByRole('link', { name: state.hostname, exact: true }) }).first();
    const pending = page.locator('li.run').filter({ hasText: 'e2e-unassigned-host' }).first();
    await run.locator('.badge').waitFor();
    await pending.locator('.badge-pending').waitFor();
    await pending.getByRole('button', { name: 'Cancel' }).click();
    await pending.locator('.badge-cancelled').waitFor();
    await page.locator('.picker-list label').filter({ hasText: 'e2e-unassigned-host' }).locator('input').uncheck();
    await waitFor('the command to complete', async () => (await run.locator('.badge-completed').count()) > 0, 45_000);
    const out = await run.locator('pre.stdout').textContent();
    if (!out.includes(MARKER)) throw new Error(`stdout is "${out}"`);

    // A failing command shows as failed, with its exit code and standard error.
    await page.getByLabel('Command', { exact: true }).fill('echo oops-from-e2e 1>&2; exit 3');
    await page.getByRole('button', { name: 'Run on 1 agent' }).click();
    const failedRun = page.locator('li.run').first();
    await failedRun.locator('code.run-cmd').filter({ hasText: 'oops-from-e2e' }).waitFor();
    await waitFor('the command to fail', async () => (await failedRun.locator('.badge-failed').count()) > 0, 45_000);
    const err = await failedRun.locator('pre.stderr').textContent();
    if (!err.includes('oops-from-e2e')) throw new Error(`stderr is "${err}"`);
    await shot('07-console');
  });

  step('the command is in the commands list', async () => {
    await goto('Commands');
    await page.getByRole('heading', { name: 'Commands' }).waitFor();
    const row = page
      .locator('tr[data-command-id]')
      .filter({ hasText: `echo ${MARKER}` })
      .filter({ has: page.getByRole('link', { name: state.hostname, exact: true }) });
    await row.first().waitFor();
    if ((await row.first().locator('.badge-completed').count()) !== 1) throw new Error('the command is not shown completed');
    await page.getByLabel('Status').selectOption('failed');
    await page.locator('tr[data-command-id]').filter({ hasText: 'oops-from-e2e' }).first().waitFor();
    await row.first().waitFor({ state: 'detached' });
    await page.getByLabel('Status').selectOption('timed_out');
    await page.getByText('No commands match these filters.').waitFor();
    await page.getByLabel('Status').selectOption('completed');
    await row.first().waitFor();
    await row.first().locator('summary').click();
    await row.first().locator('pre.stdout').filter({ hasText: MARKER }).waitFor();
    await shot('08-commands');
  });

  /** GET on the API with the browser's session, from here (not through the page). */
  const apiGet = async (p) => {
    const token = await page.evaluate(() => JSON.parse(localStorage.getItem('gururmm.session') ?? '{}').token);
    const res = await fetch(`${backend.base}${p}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${p} answered ${res.status}`);
    return res.json();
  };
  const FINISHED = ['completed', 'failed', 'timed_out', 'cancelled'];
  /** The console with only the e2e agent chosen and no results from earlier steps. */
  const freshConsole = async () => {
    await page.goto(`${backend.base}/#/console?agents=${state.agentId}`);
    await page.reload();
    await page.getByRole('button', { name: 'Run on 1 agent' }).waitFor();
  };

  step('a command printing a line a second shows its lines while it runs, also in a tab opened in the middle; the end result is the streamed text', async () => {
    await freshConsole();
    await page.getByLabel('Type').selectOption('shell');
    await page.getByLabel('Command', { exact: true }).fill('for i in 1 2 3 4 5; do echo line $i; sleep 1; done');
    await page.getByRole('button', { name: 'Run on 1 agent' }).click();
    const run = page.locator('li.run').first();
    await run.locator('code.run-cmd').filter({ hasText: 'echo line $i' }).waitFor();
    const id = await run.getAttribute('data-command-id');
    const stdout = run.locator('pre.stdout');
    // The agent streams only when it says so (live_output).
    const { capabilities } = await apiGet(`/api/agents/${state.agentId}`);
    if (!capabilities?.includes('live_output')) {
      throw new Error(`the agent does not stream its output (capabilities ${JSON.stringify(capabilities)})`);
    }
    await stdout.filter({ hasText: 'line 2' }).waitFor({ timeout: 15_000 });
    const during = await apiGet(`/api/commands/${id}`);
    if (FINISHED.includes(during.status)) throw new Error(`"line 2" showed only once the command was ${during.status}`);
    if ((await run.locator('.badge-running').count()) !== 1) throw new Error('the run is not shown as running while its lines come in');
    log(`live: "${(await stdout.textContent()).trim().replace(/\n/g, ' | ')}" while ${during.status}`);

    // A second tab opened now shows what came before, then follows.
    const tab = await context.newPage();
    try {
      tab.setDefaultTimeout(STEP_TIMEOUT);
      await tab.goto(`${backend.base}/#/commands/${id}`);
      const tabOut = tab.locator('pre.stdout');
      await tabOut.filter({ hasText: 'line 2' }).waitFor();
      const atOpen = await apiGet(`/api/commands/${id}`);
      if (FINISHED.includes(atOpen.status)) throw new Error(`the command was ${atOpen.status} before the second tab showed its lines`);
      await tab.locator('.badge-running').waitFor();
      await shot('07b-command-page-live');
      await tab.locator('.badge-completed').waitFor({ timeout: 30_000 });
      const done = await apiGet(`/api/commands/${id}`);
      if (!done.stdout.includes('line 5')) throw new Error(`the stored stdout is "${done.stdout}"`);
      await waitFor('the tab to show the stored result', async () => (await tabOut.textContent()) === done.stdout);
      await run.locator('.badge-completed').waitFor();
      await waitFor('the console to show the stored result', async () => (await stdout.textContent()) === done.stdout);
    } finally {
      await tab.close();
    }
  });

  step('a running output box follows the tail, until the reader scrolls up', async () => {
    await freshConsole();
    await page.getByLabel('Command', { exact: true }).fill('for n in 0 60 120; do for i in $(seq 1 60); do echo tail-$((n + i)); done; sleep 2; done');
    await page.getByRole('button', { name: 'Run on 1 agent' }).click();
    const run = page.locator('li.run').first();
    const box = run.locator('pre.stdout');
    const atEnd = async (after) => {
      await box.filter({ hasText: after }).waitFor({ timeout: 15_000 });
      if ((await run.locator('.badge-running').count()) !== 1) throw new Error(`the command ended before ${after} showed`);
      const at = await box.evaluate((el) => ({ top: el.scrollTop, client: el.clientHeight, height: el.scrollHeight }));
      if (at.height <= at.client) throw new Error('the lines do not overflow the box');
      if (at.height - at.top - at.client > 8) throw new Error(`the box is not at the end after ${after}: ${JSON.stringify(at)}`);
    };
    await atEnd('tail-60');
    await atEnd('tail-120');
    await box.evaluate((el) => {
      el.scrollTop = 0;
    });
    await box.filter({ hasText: 'tail-180' }).waitFor({ timeout: 15_000 });
    const after = await box.evaluate((el) => el.scrollTop);
    if (after !== 0) throw new Error(`the box moved to ${after} px after the reader scrolled to the top`);
    await run.locator('.badge-completed').waitFor({ timeout: 30_000 });
  });

  step('a multi-line command keeps its lines in the result header, in a bounded box', async () => {
    await freshConsole();
    const lines = Array.from({ length: 30 }, (_, i) => `echo multi-${i + 1}`).join('\n');
    await page.getByLabel('Command', { exact: true }).fill(lines);
    await page.getByRole('button', { name: 'Run on 1 agent' }).click();
    const run = page.locator('li.run').first();
    const head = run.locator('code.run-cmd').filter({ hasText: 'echo multi-30' });
    await head.waitFor();
    const shown = await head.evaluate((el) => ({ text: el.innerText, height: el.getBoundingClientRect().height, scroll: el.scrollHeight }));
    if (!shown.text.includes('echo multi-1\necho multi-2\n')) throw new Error(`the header shows "${shown.text.slice(0, 80)}"`);
    if (shown.height > 200 || shown.scroll <= shown.height) throw new Error(`the header is ${shown.height} px tall (content ${shown.scroll} px)`);
    await run.locator('pre.stdout').filter({ hasText: 'multi-30' }).waitFor({ timeout: 30_000 });
  });

  step('a 1 MB output stays in a bounded box; Download gives the whole text, also from the list preview', async () => {
    await freshConsole();
    await page.getByLabel('Command', { exact: true }).fill("head -c 1000000 /dev/zero | tr '\\0' 'x' | fold -w 100");
    await page.getByRole('button', { name: 'Run on 1 agent' }).click();
    const run = page.locator('li.run').first();
    await run.locator('code.run-cmd').filter({ hasText: 'fold -w 100' }).waitFor();
    const id = await run.getAttribute('data-command-id');
    await waitFor('the command to complete', async () => (await run.locator('.badge-completed').count()) > 0, 60_000);
    const done = await apiGet(`/api/commands/${id}`);
    if (!done.stdout || done.stdout.length < 100_000) throw new Error(`the stored stdout has ${done.stdout?.length} characters`);
    await waitFor('the box to hold the stored text', async () => (await run.locator('pre.stdout').evaluate((el) => el.textContent.length)) === done.stdout.length);
    const { height, viewport } = await page.evaluate(() => ({ height: document.documentElement.scrollHeight, viewport: window.innerHeight }));
    log(`1 MB output: ${done.stdout.length} characters stored; page ${height} px tall, viewport ${viewport} px`);
    if (height >= 2 * viewport) throw new Error(`the console page is ${height} px tall (viewport ${viewport} px)`);
    await shot('07c-console-large-output', { fullPage: false });
    const downloaded = async (where) => {
      const [download] = await Promise.all([page.waitForEvent('download'), where.getByRole('button', { name: 'Download standard output' }).click()]);
      const text = fs.readFileSync(await download.path(), 'utf8');
      if (text !== done.stdout) throw new Error(`the download (${download.suggestedFilename()}) has ${text.length} characters, the stored stdout ${done.stdout.length}`);
      return download.suggestedFilename();
    };
    log(`downloaded ${await downloaded(run)} from the console`);

    // The list sends the first 500 characters; it says so, and Download fetches the rest.
    const listed = await apiGet(`/api/commands?agent_id=${state.agentId}&limit=5`);
    const inList = listed.find((c) => c.id === id);
    if (!inList?.output_preview || inList.stdout.length > 500) throw new Error(`the list sends ${inList?.stdout?.length} characters of stdout (output_preview ${inList?.output_preview})`);
    await goto('Commands');
    const row = page.locator(`tr[data-command-id="${id}"]`);
    await row.locator('summary').click();
    await row.getByTestId('preview-hint').filter({ hasText: `first 500 of ${done.stdout.length.toLocaleString('en-US')} characters` }).waitFor();
    const { height: listHeight } = await page.evaluate(() => ({ height: document.documentElement.scrollHeight }));
    if (listHeight >= 2 * viewport) throw new Error(`the commands page is ${listHeight} px tall`);
    await row.getByRole('button', { name: 'Show the full output' }).waitFor();
    log(`downloaded ${await downloaded(row)} from the commands list`);
    // Fetched for the download, the whole text now shows in the row's box.
    await waitFor('the full output in the list', async () => (await row.locator('pre.stdout').evaluate((el) => el.textContent.length)) === done.stdout.length);
    if ((await row.getByTestId('preview-hint').count()) !== 0) throw new Error('the preview hint stayed after the full output came');
    await shot('08b-commands-preview', { fullPage: false });
  });

  step('the console offers claude_task only for agents that have it enabled', async () => {
    const agentRecord = await apiGet(`/api/agents/${state.agentId}`);
    if (agentRecord.capabilities?.includes('claude_task')) throw new Error('the e2e agent has claude_task enabled');
    await freshConsole();
    const option = page.getByLabel('Type').locator('option[value="claude_task"]');
    await waitFor('claude_task to be refused for this agent', async () => (await option.isDisabled()) && (await option.getAttribute('title')) === `not enabled on: ${state.hostname}`);
    // With no agent chosen it is not offered either.
    await page.getByRole('button', { name: 'Clear' }).click();
    await waitFor('claude_task to wait for agents', async () => (await option.isDisabled()) && /choose the agents first/.test(await option.getAttribute('title')));
  });

  // The AI task executor with a stand-in CLI made here: the real Claude CLI cannot run in this
  // environment (no network, no account).
  {
    step('with [claude] enabled the agent offers claude_task: a task runs with its context files, and a refused one shows the server\'s reason', async () => {
      const root = path.join(tmp, 'claude-root');
      fs.mkdirSync(root, { recursive: true });
      fs.writeFileSync(path.join(root, 'notes.txt'), 'e2e context notes\n');
      const cli = path.join(tmp, 'stand-in-claude');
      fs.writeFileSync(
        cli,
        ['#!/bin/sh', 'while [ $# -gt 0 ]; do if [ "$1" = "-p" ]; then shift; echo "stand-in task: $1"; fi; shift; done', 'echo "stand-in cwd: $(pwd)"', 'cat', ''].join('\n'),
        { mode: 0o755 },
      );
      await agent.stop();
      agent = await backend.startAgent(state.siteCode, ['[claude]', 'enabled = true', `cli_path = "${cli}"`, `working_root = "${root}"`, '']);
      await waitFor('the agent to offer claude_task', async () => {
        if (agent.process.exitCode !== null) throw new Error('the agent exited; see artifacts/e2e/agent.log');
        const a = await apiGet(`/api/agents/${state.agentId}`);
        return a.online && a.capabilities.includes('claude_task');
      }, 45_000);
      await freshConsole();
      const option = page.getByLabel('Type').locator('option[value="claude_task"]');
      await waitFor('claude_task to be offered', async () => !(await option.isDisabled()));
      await page.getByLabel('Type').selectOption('claude_task');
      if ((await page.getByLabel('Timeout (seconds)').getAttribute('max')) !== '600') throw new Error('the timeout allows more than 600 s');
      await page.getByLabel('Task').fill('summarize the notes');
      await page.getByLabel('Context files (optional)').fill('notes.txt');
      await page.getByRole('button', { name: 'Run on 1 agent' }).click();
      const run = page.locator('li.run').first();
      await run.locator('code.run-cmd').filter({ hasText: 'summarize the notes' }).waitFor();
      await waitFor('the task to complete', async () => (await run.locator('.badge-completed').count()) > 0, 45_000);
      const out = await run.locator('pre.stdout').textContent();
      if (!out.includes('stand-in task: summarize the notes') || !out.includes('e2e context notes')) throw new Error(`the task's output is "${out}"`);
      await run.getByText('context files: notes.txt').waitFor();
      await shot('07d-console-claude-task');
      // A task with shell characters is refused by the server, in its words.
      await page.getByLabel('Task').fill('summarize; rm -rf notes');
      await page.getByRole('button', { name: 'Run on 1 agent' }).click();
      const refused = page.locator('li.run').first().getByRole('alert');
      await refused.waitFor();
      const text = (await refused.textContent()).trim();
      if (!text.startsWith('The command was not accepted for') || text.endsWith('The request was not accepted')) throw new Error(`the refusal says "${text}"`);
      log(`a task with ";" says: "${text}"`);
    });
  }

  step('a policy assigned to the site reaches the agent: its page shows it applied, each value with its source', async () => {
    await goto('Policies');
    await page.getByRole('heading', { name: 'Policies', level: 1 }).waitFor();
    await page.getByText('No policy yet').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('E2E policy');
    await page.getByLabel('Metrics every (seconds)').fill('10');
    await page.getByLabel('CPU alert threshold (%)').fill('95');
    await page.getByRole('button', { name: 'Add policy' }).click();
    await page.locator('tr[data-policy-id]').filter({ hasText: 'E2E policy' }).waitFor();
    const assign = page.getByRole('form', { name: 'Assign a policy' });
    await assign.getByLabel('Applies to').selectOption('site');
    await assign.getByLabel('Which site').selectOption({ label: 'E2E Client / E2E Site' });
    await assign.getByRole('button', { name: 'Assign' }).click();
    await page.getByRole('row').filter({ hasText: 'Site E2E Client / E2E Site' }).filter({ hasText: 'E2E policy' }).waitFor();
    await shot('09a-policies');
    await page.goto(`${backend.base}/#/agents/${state.agentId}`);
    const row = page.locator('tr[data-setting="metrics_interval_seconds"]');
    await row.filter({ hasText: 'E2E policy (v1) on Site E2E Client / E2E Site' }).waitFor();
    // The agent answers policy_status once it applied the change.
    await waitFor('the agent to apply the policy', async () => {
      await page.reload();
      await page.getByTestId('policy-status').waitFor();
      return (await page.getByTestId('policy-status').locator('.badge-applied').count()) === 1;
    }, 30_000);
    await shot('09b-agent-policy');
  });

  step('a CPU rule opens an alert, shown live in the header, the fleet and the agent page; acknowledged with a note; resolved when the rule is raised', async () => {
    await goto('Alerts');
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Rules and maintenance windows' }).click();
    await page.getByRole('heading', { name: 'Alert rules' }).waitFor();
    await page.getByLabel('Name', { exact: true }).first().fill('E2E CPU');
    await page.getByLabel('Condition').selectOption('cpu');
    await page.getByLabel('Threshold (%)').fill('0');
    await page.getByLabel('For at least (seconds)').fill('0');
    await page.getByLabel('Severity').selectOption('critical');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.locator('tr[data-rule-id]').filter({ hasText: 'CPU above 0% for 0 s' }).waitFor();
    // A maintenance window on another scope, listed in words.
    await page.getByLabel('Name', { exact: true }).last().fill('E2E weekend');
    await page.getByLabel('Applies to').last().selectOption('client');
    await page.getByLabel('Which client').selectOption({ label: 'E2E Client' });
    await page.getByLabel('Starts at (HH:MM)').fill('23:00');
    await page.getByLabel('Lasts (minutes)').fill('30');
    // Not today: nothing may be silenced while the rule is tested.
    const today = (new Date().getUTCDay() + 6) % 7; // 0 = Monday
    for (const [i, d] of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].entries()) {
      const box = page.getByRole('group', { name: 'Days' }).getByLabel(d);
      if (i === (today + 3) % 7) await box.check();
      else await box.uncheck();
    }
    await page.getByRole('button', { name: 'Add window' }).click();
    await page.locator('tr[data-window-id]').filter({ hasText: 'E2E weekend' }).filter({ hasText: '23:00 for 30 min (UTC)' }).waitFor();
    await shot('09c-alert-rules');
    // The next metrics report (every 10 s under the policy) opens the alert; no reload.
    await page.evaluate(() => {
      window.__e2eNoReload = true;
    });
    await page.getByTestId('alert-count').filter({ hasText: '1 open alert (1 critical' }).waitFor({ timeout: 45_000 });
    if (!(await page.evaluate(() => window.__e2eNoReload === true))) throw new Error('the page was reloaded');
    await goto('Fleet');
    await page.locator(`tr[data-agent-id="${state.agentId}"]`).getByTestId('agent-alert').locator('.badge-severity-critical').waitFor();
    await page.getByTestId('alert-count').click();
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    const alertRow = page.locator('tr[data-alert-id]').filter({ hasText: 'E2E CPU' }).first();
    await alertRow.locator('.badge-open').waitFor();
    await alertRow.getByRole('button', { name: /Acknowledge/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Note (optional)').fill('looking into it');
    await dialog.getByRole('button', { name: 'Acknowledge' }).click();
    // The page shows only open alerts (the header link's filter): show every state.
    await page.getByLabel('State').selectOption('');
    const acked = page.locator('tr[data-alert-id]').filter({ hasText: 'E2E CPU' }).first();
    await acked.locator('.badge-acknowledged').waitFor();
    await acked.getByText(`acknowledged by ${ADMIN_EMAIL}`, { exact: false }).waitFor();
    await acked.getByText('“looking into it”', { exact: false }).waitFor();
    await shot('09d-alerts');
    await page.goto(`${backend.base}/#/agents/${state.agentId}`);
    await page.locator('#alerts-title').waitFor();
    await page.locator('section', { has: page.locator('#alerts-title') }).locator('tr[data-alert-id]').filter({ hasText: 'E2E CPU' }).waitFor();
    // Raised above any load: the alert resolves by itself at the next report.
    await goto('Alerts');
    await page.getByRole('link', { name: 'Rules and maintenance windows' }).click();
    await page.locator('tr[data-rule-id]').filter({ hasText: 'E2E CPU' }).getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Threshold (%)').fill('100');
    await page.getByRole('button', { name: 'Save rule' }).click();
    await page.locator('tr[data-rule-id]').filter({ hasText: 'CPU above 100% for 0 s' }).waitFor();
    await page.getByTestId('alert-count').filter({ hasText: 'No open alerts' }).waitFor({ timeout: 45_000 });
    await goto('Alerts');
    await page.getByLabel('State').selectOption('resolved');
    await page.locator('tr[data-alert-id]').filter({ hasText: 'E2E CPU' }).first().getByText(/resolved (automatically|by)/).waitFor();
  });

  step('a webhook channel with a route: "send test" reaches a receiver started here, signed; the delivery shows delivered', async () => {
    const received = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const secret = 'e2e-webhook-secret-0123456789';
    try {
      await goto('Alerts');
      await page.getByRole('link', { name: 'Notifications' }).click();
      await page.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor();
      await page.getByLabel('Name', { exact: true }).fill('E2E hook');
      await page.getByLabel('Kind').selectOption('webhook');
      await page.getByLabel('URL').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
      await page.getByLabel(/Signing secret/).fill(secret);
      await page.getByRole('button', { name: 'Add channel' }).click();
      const channel = page.locator('tr[data-channel-id]').filter({ hasText: 'E2E hook' });
      await channel.waitFor();
      await page.getByLabel('Severity at least').selectOption('critical');
      await page.getByRole('button', { name: 'Add route' }).click();
      await page.getByRole('row').filter({ hasText: 'E2E hook' }).filter({ hasText: 'Whole fleet' }).waitFor();
      await channel.getByRole('button', { name: 'Send test to E2E hook' }).click();
      await page.locator('tr[data-delivery-id][data-status="delivered"]').first().waitFor({ timeout: 30_000 });
      await shot('09e-notifications');
      await waitFor('the receiver to get the test', async () => received.length > 0);
      // Switched off and on again from the table, the channel keeps its secret: a second test
      // is signed with it too.
      await channel.getByRole('button', { name: 'Disable E2E hook' }).click();
      await channel.getByRole('cell', { name: 'no', exact: true }).waitFor();
      await channel.getByRole('button', { name: 'Enable E2E hook' }).click();
      await channel.getByRole('cell', { name: 'yes', exact: true }).waitFor();
      await channel.getByRole('button', { name: 'Send test to E2E hook' }).click();
      await waitFor('the receiver to get the second test', async () => received.length > 1, 30_000);
      for (const { headers, body } of received) {
        const expected = crypto.createHmac('sha256', secret).update(`${headers['x-gururmm-timestamp']}.${body}`).digest('hex');
        if (headers['x-gururmm-signature'] !== `sha256=${expected}`) throw new Error(`bad signature ${headers['x-gururmm-signature']}`);
      }
    } finally {
      receiver.close();
    }
  });

  step('a script with a parameter is created, run as a job on the agent with a hostile value, and finishes live; the output shows the value literally; an edit is version 2', async () => {
    const VALUE = `it's "quoted"; $(echo pwned)`;
    await goto('Scripts');
    await page.getByRole('heading', { name: 'Scripts', level: 1 }).waitFor();
    await page.locator('tr[data-script-id]').first().waitFor(); // the starter scripts
    await page.getByRole('button', { name: 'New script' }).click();
    await page.getByLabel('Name', { exact: true }).fill('E2E echo');
    await page.locator('#script-category').fill('e2e');
    await page.getByLabel('Command type').selectOption('shell');
    await page.getByLabel('Body').fill("printf '%s\\n' \"$VALUE\"");
    await page.getByRole('button', { name: 'Add parameter' }).click();
    await page.getByLabel('Parameter 1 name').fill('VALUE');
    await page.getByRole('group', { name: 'Parameter 1' }).getByLabel('Required').check();
    await page.getByRole('button', { name: 'Add script' }).click();
    await page.getByTestId('script-saved').filter({ hasText: 'as version 1' }).waitFor();
    const row = page.locator('tr[data-script-id]').filter({ hasText: 'E2E echo' });
    await row.getByRole('link', { name: 'Run…' }).click();
    await page.getByRole('heading', { name: 'Run a script' }).waitFor();
    await page.getByLabel(/^Value\b|^VALUE/).first().fill(VALUE);
    await page.locator('.picker-list label').filter({ hasText: state.hostname }).locator('input').check();
    await page.getByRole('button', { name: 'Start job' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]+$/);
    await page.getByRole('heading', { name: /^Job / }).waitFor();
    // No reload from here: the job page follows the live events.
    await waitFor('the job to finish live', async () => (await page.locator('section[data-job-id] .badge-finished').count()) === 1, 45_000);
    await page.getByTestId('job-progress').filter({ hasText: '1 of 1 done: 1 completed' }).first().waitFor();
    await shot('18-job');
    await page.locator('tr[data-agent-id]').filter({ hasText: state.hostname }).getByRole('link', { name: 'Command and output' }).click();
    await page.locator('pre.stdout').first().waitFor();
    const out = await page.locator('pre.stdout').first().textContent();
    if (out.trim() !== VALUE) throw new Error(`stdout is "${out}"`);
    if (out.includes('pwned') && !out.includes('$(echo pwned)')) throw new Error('the value was run by a shell');

    await goto('Scripts');
    const row2 = page.locator('tr[data-script-id]').filter({ hasText: 'E2E echo' });
    await row2.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Description').fill('prints its value');
    await page.getByRole('button', { name: 'Save script' }).click();
    await page.getByTestId('script-saved').filter({ hasText: 'as version 2' }).waitFor();
    await page.locator('tr[data-version="2"]').waitFor();
    await page.locator('tr[data-version="1"]').getByRole('button', { name: 'View version 1' }).click();
    await page.getByTestId('version-body').filter({ hasText: '$VALUE' }).waitFor();
    await goto('Jobs');
    await page.locator('tr[data-job-id]').filter({ hasText: 'E2E echo v1' }).waitFor();
  });

  step('stop the agent and see it go offline without a reload', async () => {
    await goto('Fleet');
    const row = page.locator(`tr[data-agent-id="${state.agentId}"]`);
    await row.locator('.badge-online').waitFor();
    await page.evaluate(() => {
      window.__e2eNoReload = true;
    });
    const offlineStat = page.locator('.stat.tone-offline .stat-value');
    const offlineBefore = Number(
      await waitFor('the offline count', async () => {
        const t = (await offlineStat.textContent()).trim();
        return /^\d+$/.test(t) ? t : null;
      }),
    );
    await agent.stop();
    await row.locator('.badge-offline').waitFor({ timeout: 30_000 });
    if (!(await page.evaluate(() => window.__e2eNoReload === true))) throw new Error('the page was reloaded');
    await offlineStat.filter({ hasText: String(offlineBefore + 1) }).waitFor();
    await shot('09-fleet-agent-offline');
  });

  step('the users page creates a user and refuses a duplicate', async () => {
    await goto('Users');
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await page.getByLabel('Email').fill('tech@example.test');
    await page.getByLabel('Password').fill('tech-Password-1234');
    await page.getByLabel('Role').selectOption('technician');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: 'tech@example.test' }).waitFor();
    // The same email again is refused by the server, and the page says so.
    await page.getByLabel('Email').fill('tech@example.test');
    await page.getByLabel('Password').fill('tech-Password-1234');
    await page.getByRole('button', { name: 'Create user' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    log(`a duplicate user says: "${(await alert.textContent()).trim()}"`);
    // Requiring two-factor sign-in for everyone waits until this admin has it.
    if (!(await page.getByLabel('Require two-factor sign-in for every user').isDisabled())) {
      throw new Error('an admin without two-factor sign-in could require it of everyone');
    }
    await shot('11-users');
  });

  step("an unknown agent's page says what went wrong", async () => {
    await page.goto(`${backend.base}/#/agents/00000000-0000-4000-8000-000000000000`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()).trim();
    if (!text.startsWith('The agent could not be loaded:')) throw new Error(`the page says "${text}"`);
    log(`an unknown agent says: "${text}"`);
  });

  step('dark mode and a narrow window stay readable', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await goto('Fleet');
    await page.locator('tr[data-agent-id]').first().waitFor();
    await shot('12-fleet-dark');
    await page.getByRole('link', { name: state.hostname, exact: true }).first().click();
    await page.getByRole('heading', { name: 'Metrics' }).waitFor();
    await shot('13-agent-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 900, height: 900 });
    await goto('Fleet');
    await page.locator('tr[data-agent-id]').first().waitFor();
    await shot('14-fleet-narrow');
    await goto('Console');
    await page.getByRole('heading', { name: 'Command console' }).waitFor();
    await shot('14-console-narrow');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  step('the account page lists this session and changes nothing by looking', async () => {
    await goto('Account');
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    await page.getByText('(this browser)').waitFor();
    await shot('15-account');
  });

  step('log out ends the session on the server: the old token is refused', async () => {
    const token = await page.evaluate(() => JSON.parse(localStorage.getItem('gururmm.session') ?? '{}').token);
    if (!token) throw new Error('no stored token before signing out');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByText('You have signed out.').waitFor();
    await shot('15-logged-out');
    const res = await fetch(`${backend.base}/api/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
    if (res.status !== 401) throw new Error(`the signed-out token still works: ${res.status}`);
  });

  step('a technician signs in and sees no Users page', async () => {
    await page.getByLabel('Email').fill('tech@example.test');
    await page.getByLabel('Password').fill('tech-Password-1234');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Commands' }).waitFor();
    if ((await nav.getByRole('link', { name: 'Users' }).count()) !== 0) throw new Error('a technician sees the Users link');
    await page.goto(`${backend.base}/#/users`);
    await page.getByText('Only administrators can manage users.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  step('a technician turns on two-factor sign-in from a QR code, and then signs in with a code', async () => {
    await page.getByLabel('Email').fill('tech@example.test');
    await page.getByLabel('Password').fill('tech-Password-1234');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await page.getByRole('link', { name: 'Two-factor' }).click();
    await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
    await page.getByRole('img', { name: 'QR code for the authenticator app' }).waitFor();
    const secret = (await page.locator('code.secret').textContent()).trim();
    await shot('16-two-factor-setup');
    await page.getByLabel('Code from the app').fill(totpCode(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    const codes = page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
    await codes.first().waitFor();
    if ((await codes.count()) !== 10) throw new Error('ten recovery codes expected');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Email').fill('tech@example.test');
    await page.getByLabel('Password').fill('tech-Password-1234');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The password alone is not enough now: the page asks for the code.
    await page.getByLabel('Authentication code').fill(totpCode(secret, 1));
    await page.getByRole('button', { name: 'Verify and sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  step('an expired session returns to the login page with a message', async () => {
    await page.evaluate(() =>
      localStorage.setItem(
        'gururmm.session',
        JSON.stringify({ token: 'not-a-valid-token', expires_at: new Date(Date.now() + 3600_000).toISOString(), user: { id: 'x', email: 'x@example.test', role: 'admin', created_at: '' } }),
      ),
    );
    await page.reload();
    await page.getByText('Your session has expired. Please sign in again.').waitFor();
    await shot('17-session-expired');
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
        await shot(`FAILED-${String(passed + failed).padStart(2, '0')}`).catch(() => {});
        break; // the steps build on each other
      }
    }
  } finally {
    const skipped = steps.length - passed - failed;
    const cspViolations = consoleErrors.filter((e) => e.includes('Content Security Policy'));
    if (cspViolations.length) {
      log(`FAIL content security policy violations: ${cspViolations.join(' | ')}`);
      failed += 1;
    }
    if (consoleErrors.length) {
      fs.writeFileSync(path.join(LOGS, 'browser-console.log'), consoleErrors.join('\n'));
      log(`browser console errors (${consoleErrors.length}) in artifacts/e2e/browser-console.log`);
    }
    await context.close().catch(() => {});
    if (agent) await agent.stop();
    await backend.stop();
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
    console.log(`e2e: ${passed} passed, ${failed + skipped} failed`);
  }
  return failed === 0 && passed === steps.length;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  async (e) => {
    console.error(`[e2e] ${e.stack ?? e}`);
    for (const c of children) if (typeof c.kill === 'function') c.kill('SIGKILL');
    console.log(`e2e: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  },
);
