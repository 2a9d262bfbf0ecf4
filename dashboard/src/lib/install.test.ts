import { describe, expect, it } from 'vitest';
import { agentToml, agentWebSocketUrl, linuxInstall, windowsInstall } from './install';

const https = { protocol: 'https:', host: 'rmm.example.com' };
const http = { protocol: 'http:', host: '127.0.0.1:3001' };

describe('install commands', () => {
  it('derives the agents WebSocket URL from the page address', () => {
    expect(agentWebSocketUrl(https)).toBe('wss://rmm.example.com/ws');
    expect(agentWebSocketUrl(http)).toBe('ws://127.0.0.1:3001/ws');
  });
  it('writes the site code and URL into agent.toml', () => {
    expect(agentToml('AMBER-RIVER-4821', https)).toBe('[server]\nurl = "wss://rmm.example.com/ws"\napi_key = "AMBER-RIVER-4821"');
  });
  it('gives Linux the config path, the download and the install step', () => {
    const s = linuxInstall('AMBER-RIVER-4821', https);
    expect(s).toContain('https://rmm.example.com/downloads/gururmm-agent-linux-x86_64');
    expect(s).toContain("cat > /etc/gururmm/agent.toml <<'EOF'\n[server]\nurl = \"wss://rmm.example.com/ws\"\napi_key = \"AMBER-RIVER-4821\"\nEOF");
    expect(s.trim().endsWith('gururmm-agent install')).toBe(true);
  });
  it('gives Windows the ProgramData config and the .exe', () => {
    const s = windowsInstall('AMBER-RIVER-4821', http);
    expect(s).toContain('C:\\ProgramData\\GuruRMM\\agent.toml');
    expect(s).toContain('http://127.0.0.1:3001/downloads/gururmm-agent-windows-x86_64.exe');
    expect(s).toContain('url = "ws://127.0.0.1:3001/ws"');
    expect(s).toContain('& "C:\\Program Files\\GuruRMM\\gururmm-agent.exe" install');
  });
});
