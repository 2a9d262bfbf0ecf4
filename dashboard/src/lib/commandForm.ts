// The console's form rules that need no page: which agents can take a claude_task, and how its
// context files are written.
import type { Agent } from '../api';

/** A claude_task runs at most this long (the server refuses more). */
export const CLAUDE_TASK_MAX_TIMEOUT = 600;
/** Every other command type. */
export const COMMAND_MAX_TIMEOUT = 86_400;

export function hasCapability(agent: Agent, capability: string): boolean {
  return agent.capabilities.includes(capability);
}

/**
 * Why claude_task cannot be chosen for these agents, or null when it can: every one of them must
 * have the capability ("not enabled on: host-a, host-b").
 */
export function claudeTaskUnavailable(agents: Agent[]): string | null {
  if (agents.length === 0) return 'choose the agents first (claude_task needs agents that have it enabled)';
  const without = agents.filter((a) => !hasCapability(a, 'claude_task')).map((a) => a.hostname);
  return without.length ? `not enabled on: ${without.join(', ')}` : null;
}

/** Context files written one per line or separated by commas; blanks dropped. */
export function parseContextFiles(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}
