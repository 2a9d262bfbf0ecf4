// Helpers shared by the browser end-to-end tests (run.mjs, sso.mjs).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DASHBOARD = path.resolve(HERE, '..');
export const ROOT = path.resolve(DASHBOARD, '..');
export const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
export const SERVER_BIN = process.env.GURURMM_SERVER_BIN ?? path.join(TARGET, 'debug', 'gururmm-server');
export const AGENT_BIN = process.env.GURURMM_AGENT_BIN ?? path.join(TARGET, 'debug', 'gururmm-agent');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = path.join(ROOT, 'artifacts', 'screenshots');
export const LOGS = path.join(ROOT, 'artifacts', 'e2e');
export const STEP_TIMEOUT = 20_000;

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts processes with their output in artifacts/e2e/<name>.log; `children` lists them. */
export function processStarter(log) {
  const children = [];
  const start = (name, cmd, args, env) => {
    const out = fs.openSync(path.join(LOGS, `${name}.log`), 'w');
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
    child.on('exit', (code, signal) => log(`${name} exited (${signal ?? code})`));
    children.push(child);
    return child;
  };
  return { start, children };
}

export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

export async function waitFor(what, fn, ms = STEP_TIMEOUT) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Chromium with a fresh profile in `profileDir`. */
export async function launchChromium(profileDir, { headed = false } = {}) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: !headed,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'].filter((a) => !headed || a !== '--headless'),
    viewport: { width: 1280, height: 860 },
    colorScheme: 'light',
  });
}
