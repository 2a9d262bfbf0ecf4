// The commands that install an agent for a site, built from the site code and the address the
// dashboard was loaded from (the server serves both the dashboard and the agents' WebSocket).

export interface ServerLocation {
  protocol: string; // "https:" or "http:"
  host: string; // host[:port]
}

/** The agents' WebSocket URL of the server this page came from: https -> wss, http -> ws. */
export function agentWebSocketUrl(loc: ServerLocation): string {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${loc.host}/ws`;
}

/** Where the server serves agent builds (a configured folder behind this path). */
export const DOWNLOAD_PATH = '/downloads';
export const LINUX_BINARY = 'gururmm-agent-linux-x86_64';
export const WINDOWS_BINARY = 'gururmm-agent-windows-x86_64.exe';

export function downloadUrl(loc: ServerLocation, file: string): string {
  return `${loc.protocol}//${loc.host}${DOWNLOAD_PATH}/${file}`;
}

/** The agent.toml for a site: the server section only; the rest keeps the agent's defaults. */
export function agentToml(siteCode: string, loc: ServerLocation): string {
  return ['[server]', `url = "${agentWebSocketUrl(loc)}"`, `api_key = "${siteCode}"`].join('\n');
}

/** Shell lines to run as root on a Linux machine. */
export function linuxInstall(siteCode: string, loc: ServerLocation): string {
  return [
    `curl -fsSL -o /usr/local/bin/gururmm-agent ${downloadUrl(loc, LINUX_BINARY)}`,
    'chmod 755 /usr/local/bin/gururmm-agent',
    'mkdir -p /etc/gururmm',
    "cat > /etc/gururmm/agent.toml <<'EOF'",
    agentToml(siteCode, loc),
    'EOF',
    'chmod 600 /etc/gururmm/agent.toml',
    'gururmm-agent install',
  ].join('\n');
}

/** PowerShell lines to run as Administrator on a Windows machine. */
export function windowsInstall(siteCode: string, loc: ServerLocation): string {
  const bin = 'C:\\Program Files\\GuruRMM';
  const conf = 'C:\\ProgramData\\GuruRMM';
  return [
    `New-Item -ItemType Directory -Force -Path "${bin}", "${conf}" | Out-Null`,
    `Invoke-WebRequest -UseBasicParsing -Uri "${downloadUrl(loc, WINDOWS_BINARY)}" -OutFile "${bin}\\gururmm-agent.exe"`,
    `Set-Content -Encoding ASCII -Path "${conf}\\agent.toml" -Value @"`,
    agentToml(siteCode, loc),
    '"@',
    `& "${bin}\\gururmm-agent.exe" install`,
  ].join('\n');
}
