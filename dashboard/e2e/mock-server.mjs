// A stand-in for the GuruRMM server, for developing and eyeballing the dashboard when the real
// server is not at hand: in-memory data, the REST API's shapes, the SSE stream, dist/ at "/".
// It is NOT what the end-to-end tests run against by default (they start the real server and the
// real agent); `node e2e/run.mjs --mock` uses it only to check the test script itself.
//
//   node e2e/mock-server.mjs [port]        then open http://127.0.0.1:<port>/  (admin@example.test / mock-password)
//
// Mock-only endpoint: POST /__mock/enroll {site_code, hostname} plays an agent enrolling with a
// site code; it goes online and answers `echo ...` commands after a short delay.
// POST /__mock/disconnect {hostname} plays that agent going away.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const WORDS = ['AMBER', 'RIVER', 'CEDAR', 'STONE', 'MAPLE', 'HARBOR', 'COPPER', 'FALCON'];

export function createMockServer({ email = 'admin@example.test', password = 'mock-password' } = {}) {
  const now = () => new Date().toISOString();
  const db = {
    users: [{ id: randomUUID(), email, password, role: 'admin', created_at: now() }],
    clients: [],
    sites: [],
    agents: [],
    commands: [],
    tokens: new Map(),
  };
  const streams = new Set();

  const code = () => `${WORDS[Math.floor(Math.random() * 8)]}-${WORDS[Math.floor(Math.random() * 8)]}-${1000 + Math.floor(Math.random() * 9000)}`;
  const publicUser = ({ password: _p, ...u }) => u;
  const clientView = (c) => ({
    ...c,
    site_count: db.sites.filter((s) => s.client_id === c.id).length,
    agent_count: db.agents.filter((a) => db.sites.find((s) => s.id === a.site_id)?.client_id === c.id).length,
  });
  const siteView = (s) => ({ ...s, client_name: db.clients.find((c) => c.id === s.client_id)?.name ?? null, agent_count: db.agents.filter((a) => a.site_id === s.id).length });
  const agentView = (a) => {
    const site = db.sites.find((s) => s.id === a.site_id);
    const client = site && db.clients.find((c) => c.id === site.client_id);
    return { ...a, site_name: site?.name ?? null, client_id: client?.id ?? null, client_name: client?.name ?? null, status: a.online ? 'online' : 'offline' };
  };
  const emit = (event, data) => {
    for (const res of streams) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  function enroll(siteCode, hostname) {
    const site = db.sites.find((s) => s.site_code === siteCode);
    if (!site) return null;
    const agent = {
      id: randomUUID(), site_id: site.id, hostname, device_id: randomUUID(), os_type: 'linux', os_version: 'Debian 12', arch: 'x86_64',
      version: '0.1.0', online: true, last_seen: now(), created_at: now(),
    };
    db.agents.push(agent);
    emit('agent_status', { agent_id: agent.id, online: true, hostname });
    return agent;
  }

  async function body(req) {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (!raw) return {};
    try {
      return JSON.parse(raw);
    } catch {
      return undefined;
    }
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const send = (status, data) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    const fail = (status, error) => send(status, { error });
    const p = url.pathname;

    if (!p.startsWith('/api') && !p.startsWith('/__mock')) {
      const file = path.join(DIST, p === '/' ? 'index.html' : p);
      if (!file.startsWith(DIST) || !fs.existsSync(file)) return fail(404, 'not found');
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      return fs.createReadStream(file).pipe(res);
    }
    const b = req.method === 'GET' ? {} : await body(req);
    if (b === undefined) return fail(400, 'request body is not valid JSON');

    if (p === '/__mock/disconnect') {
      const a = db.agents.find((x) => x.hostname === b.hostname);
      if (!a) return fail(404, 'no such agent');
      Object.assign(a, { online: false, last_seen: now() });
      emit('agent_status', { agent_id: a.id, online: false, hostname: a.hostname });
      return send(204);
    }
    if (p === '/__mock/enroll') {
      const a = enroll(b.site_code, b.hostname ?? 'mock-host');
      return a ? send(200, agentView(a)) : fail(401, 'unknown site code');
    }
    if (p === '/api/auth/login' && req.method === 'POST') {
      const u = db.users.find((x) => x.email === b.email && x.password === b.password);
      if (!u) return fail(401, 'invalid email or password');
      const token = randomUUID();
      db.tokens.set(token, u.id);
      return send(200, { token, expires_at: new Date(Date.now() + 86400_000).toISOString(), user: publicUser(u) });
    }
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '') || url.searchParams.get('access_token');
    const me = db.users.find((u) => u.id === db.tokens.get(token));
    if (!me) return fail(401, 'missing or expired token');

    if (p === '/api/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.write(': connected\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    if (p === '/api/auth/me') return send(200, publicUser(me));

    let m;
    const seg = p.split('/').slice(2); // after /api
    const [r0, id, sub] = seg;
    if (r0 === 'clients') {
      if (!id && req.method === 'GET') return send(200, db.clients.map(clientView));
      if (!id && req.method === 'POST') {
        if (!b.name?.trim()) return fail(422, 'name must not be empty');
        const c = { id: randomUUID(), name: b.name.trim(), notes: b.notes ?? null, created_at: now() };
        db.clients.push(c);
        return send(201, clientView(c));
      }
      const c = db.clients.find((x) => x.id === id);
      if (!c) return fail(404, 'client not found');
      if (sub === 'sites') return send(200, db.sites.filter((s) => s.client_id === id).map(siteView));
      if (req.method === 'GET') return send(200, clientView(c));
      if (req.method === 'PUT') return Object.assign(c, { name: b.name, notes: b.notes ?? null }), send(200, clientView(c));
      if (req.method === 'DELETE') {
        db.clients = db.clients.filter((x) => x !== c);
        return send(204);
      }
    }
    if (r0 === 'sites') {
      if (!id && req.method === 'GET') return send(200, db.sites.map(siteView));
      if (!id && req.method === 'POST') {
        if (!db.clients.some((c) => c.id === b.client_id)) return fail(422, 'client_id does not name a client');
        const s = { id: randomUUID(), client_id: b.client_id, name: b.name, notes: b.notes ?? null, site_code: code(), created_at: now() };
        db.sites.push(s);
        return send(201, siteView(s));
      }
      const s = db.sites.find((x) => x.id === id);
      if (!s) return fail(404, 'site not found');
      if (sub === 'regenerate-key') return (s.site_code = code()), send(200, siteView(s));
      if (req.method === 'GET') return send(200, siteView(s));
      if (req.method === 'PUT') return Object.assign(s, { name: b.name, notes: b.notes ?? null }), send(200, siteView(s));
      if (req.method === 'DELETE') return (db.sites = db.sites.filter((x) => x !== s)), send(204);
    }
    if (r0 === 'agents') {
      if (!id && req.method === 'POST') {
        if (!b.hostname) return fail(400, 'hostname is required');
        const a = {
          id: randomUUID(), site_id: b.site_id ?? null, hostname: b.hostname, device_id: null, os_type: null, os_version: null, arch: null,
          version: null, online: false, last_seen: null, created_at: now(),
        };
        db.agents.push(a);
        return send(201, { agent: agentView(a), api_key: `grmm_${randomUUID().replace(/-/g, '')}` });
      }
      if (!id) {
        let list = db.agents.map(agentView);
        for (const k of ['client_id', 'site_id', 'status']) if (url.searchParams.get(k)) list = list.filter((a) => a[k] === url.searchParams.get(k));
        return send(200, list);
      }
      if (id === 'stats') {
        const by_os = {};
        for (const a of db.agents) by_os[a.os_type] = (by_os[a.os_type] ?? 0) + 1;
        const online = db.agents.filter((a) => a.online).length;
        const by_version = {};
        for (const a of db.agents) by_version[a.version] = (by_version[a.version] ?? 0) + 1;
        const unassigned = db.agents.filter((a) => !a.site_id).length;
        return send(200, { total: db.agents.length, online, offline: db.agents.length - online, unassigned, by_os, by_version });
      }
      if (id === 'unassigned') return send(200, db.agents.filter((a) => !a.site_id).map(agentView));
      const a = db.agents.find((x) => x.id === id);
      if (!a) return fail(404, 'agent not found');
      if (!sub && req.method === 'GET') return send(200, agentView(a));
      if (!sub && req.method === 'DELETE') return (db.agents = db.agents.filter((x) => x !== a)), send(204);
      if (sub === 'move') return (a.site_id = b.site_id), send(200, agentView(a));
      if (sub === 'watchdog-events') return send(200, []);
      if (sub === 'state')
        return send(200, {
          agent_id: a.id,
          network: { hash: 'h', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', addresses: ['192.0.2.10/24'] }], updated_at: now() },
          metrics: { timestamp: Math.floor(Date.now() / 1000), cpu_percent: 7.5, memory_used_bytes: 2 ** 31, memory_total_bytes: 2 ** 33, disks: [{ mount: '/', total_bytes: 2 ** 36, used_bytes: 2 ** 34 }], network: { rx_bytes: 1e8, tx_bytes: 5e7 } },
        });
      if (sub === 'metrics') {
        const from = Date.parse(url.searchParams.get('from'));
        const to = Date.parse(url.searchParams.get('to'));
        const step = Math.max(60_000, Math.floor((to - from) / 60));
        const points = [];
        for (let t = from, i = 0; t <= to; t += step, i += 1)
          points.push({
            timestamp: new Date(t).toISOString(), cpu_percent: 20 + 15 * Math.sin(i / 5), memory_used_bytes: 2 ** 31 + i * 1e6, memory_total_bytes: 2 ** 33,
            disk_used_bytes: 2 ** 34, disk_total_bytes: 2 ** 36, network_rx_bytes: 1e8 + i * 3e6, network_tx_bytes: 5e7 + i * 1e6,
          });
        return send(200, { agent_id: a.id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket_seconds: step / 1000, points });
      }
      if (sub === 'command' && req.method === 'POST') {
        if (me.role === 'viewer') return fail(403, 'viewers cannot run commands');
        const c = {
          id: randomUUID(), agent_id: a.id, hostname: a.hostname, command_type: b.command_type, command: b.command, status: 'pending',
          timeout_seconds: b.timeout_seconds ?? 300, elevated: !!b.elevated, exit_code: null, stdout: null, stderr: null, duration_ms: null,
          created_by: me.email, created_at: now(), sent_at: null, completed_at: null,
        };
        db.commands.unshift(c);
        if (!a.online) return send(201, c); // queued until the agent connects (never, here)
        setTimeout(() => {
          Object.assign(c, { status: 'running', sent_at: now() });
          emit('command_updated', { id: c.id, agent_id: a.id, status: c.status });
        }, 200);
        setTimeout(() => {
          const echo = (m = /^echo ([^;&|<>]*)$/.exec(c.command));
          Object.assign(c, echo ? { status: 'completed', exit_code: 0, stdout: `${echo[1]}\n`, stderr: '' } : { status: 'failed', exit_code: 1, stdout: '', stderr: `mock: only echo is understood, not: ${c.command}\n` });
          Object.assign(c, { duration_ms: 12, completed_at: now() });
          emit('command_updated', { id: c.id, agent_id: a.id, status: c.status });
        }, 800);
        return send(201, c);
      }
    }
    if (r0 === 'commands') {
      if (!id) {
        let list = db.commands;
        for (const k of ['agent_id', 'status']) if (url.searchParams.get(k)) list = list.filter((c) => c[k] === url.searchParams.get(k));
        return send(200, list.slice(0, Number(url.searchParams.get('limit') ?? 100)));
      }
      const c = db.commands.find((x) => x.id === id);
      if (!c) return fail(404, 'command not found');
      if (sub === 'cancel') return Object.assign(c, { status: 'cancelled', completed_at: now() }), send(200, c);
      return send(200, c);
    }
    if (p === '/api/metrics/summary') return send(200, { agents_reporting: db.agents.length, avg_cpu_percent: db.agents.length ? 7.5 : null, avg_memory_percent: db.agents.length ? 25 : null });
    if (r0 === 'users') {
      if (me.role !== 'admin') return fail(403, 'administrators only');
      if (!id && req.method === 'GET') return send(200, db.users.map(publicUser));
      if (!id && req.method === 'POST') {
        if (db.users.some((u) => u.email === b.email)) return fail(409, 'a user with this email exists');
        const u = { id: randomUUID(), email: b.email, password: b.password, role: b.role, created_at: now() };
        db.users.push(u);
        return send(201, publicUser(u));
      }
      if (req.method === 'DELETE') return (db.users = db.users.filter((u) => u.id !== id)), send(204);
    }
    return fail(404, `no route for ${req.method} ${p}`);
  });
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 3001);
  createMockServer().listen(port, '127.0.0.1', () => console.log(`mock GuruRMM server on http://127.0.0.1:${port}/`));
}
