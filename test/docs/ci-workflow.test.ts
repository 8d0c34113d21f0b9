import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pareAsync as pare } from '../helpers/cli.ts';

/**
 * examples/ci/pare-rebuild.yml (issue 20 §2) is documentation people copy: it must parse, run on a schedule, and call
 * only pare commands and flags that exist. Each `pare …` line of its `run:` steps is checked against that command's
 * --help.
 */

const ROOT = join(import.meta.dirname, '../..');
const FILE = join(ROOT, 'examples/ci/pare-rebuild.yml');

interface Step {
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: { schedule?: { cron: string }[] };
  jobs: Record<string, { steps: Step[] }>;
}

/** The `pare` invocations of the workflow's run steps, as argument lists (quotes removed, `${{ … }}` kept whole). */
function pareCommands(w: Workflow): string[][] {
  const out: string[][] = [];
  for (const job of Object.values(w.jobs))
    for (const step of job.steps)
      for (const line of (step.run ?? '').replace(/\\\n/g, ' ').split('\n')) {
        const t = line.trim();
        if (!t.startsWith('pare ')) continue;
        const args = [...t.matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((m) => m[0].replace(/^["']|["']$/g, ''));
        const end = args.findIndex((a) => a === '>' || a === '|' || a === '&&' || a.startsWith('>'));
        out.push(args.slice(1, end < 0 ? undefined : end));
      }
  return out;
}

describe('examples/ci/pare-rebuild.yml', () => {
  const workflow = parse(readFileSync(FILE, 'utf8')) as Workflow;

  it('runs on a schedule with the Node pare needs', () => {
    expect(workflow.on.schedule?.[0]?.cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    const engines = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines.node as string;
    for (const job of Object.values(workflow.jobs)) {
      const node = job.steps.find((s) => s.uses?.startsWith('actions/setup-node'));
      expect(Number(node?.with?.['node-version'])).toBeGreaterThanOrEqual(Number(engines.replace(/\D/g, '')));
    }
  });

  it('calls only pare commands and flags that exist', async () => {
    const commands = pareCommands(workflow);
    expect(commands.map((c) => c[0])).toEqual(['outdated', 'lock', 'build', 'audit', 'push', 'sign']);
    for (const [name, ...args] of commands) {
      const help = await pare([name!, '--help']);
      expect(help.code, `pare ${name} --help`).toBe(0);
      for (const flag of args.filter((a) => a.startsWith('-')))
        expect(help.stdout, `pare ${name} ${flag}`).toMatch(new RegExp(`(^|[\\s,])${flag}([\\s,<]|$)`, 'm'));
    }
  });
});
