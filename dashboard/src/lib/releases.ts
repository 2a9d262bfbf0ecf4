// Published agent builds as the install commands see them: the stable file name of each OS
// (what `curl` fetches) exists only once a build of that OS is published.
import type { Release } from '../api';

export type InstallOs = 'linux' | 'windows';

/** The newest published x86_64 build of `os` (the one the install command fetches), if any. */
export function publishedBuild(releases: Release[], os: InstallOs): Release | undefined {
  return releases.find((r) => r.os === os && r.arch === 'x86_64' && r.stable_file_name);
}

/** What an operator runs on the server to publish a build of `os`. */
export function publishCommand(os: InstallOs): string {
  const file = os === 'windows' ? 'gururmm-agent.exe' : 'target/release/gururmm-agent';
  return [
    `gururmm-server release add --file ${file} --version 0.1.0 --os ${os} --arch x86_64 --key release.key`,
  ].join('\n');
}

export const UPDATE_STATES = ['pending', 'downloading', 'installed', 'completed', 'failed', 'rolled_back'] as const;

/** A readable label for an update's state. */
export function updateStateLabel(status: string): string {
  switch (status) {
    case 'pending':
      return 'sent, waiting for the agent';
    case 'rolled_back':
      return 'rolled back';
    default:
      return status;
  }
}
