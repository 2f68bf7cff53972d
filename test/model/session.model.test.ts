/**
 * Model-based tests of the session statechart against the real server.
 *
 * plan.ts traverses the real session machine with xstate/graph and selects paths; replay.ts
 * runs each on its own real server (real WebSocket client, real UDP, a wire-protocol peer,
 * shortened real timings); coverage.ts proves that every state node and every transition of the
 * machine was exercised (and that the supervisor spawned and reaped sessions), and prints it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { checkCoverage } from './coverage.js';
import { describePath, planPaths } from './plan.js';
import { newCoverage, replayPath } from './replay.js';

const plan = planPaths();
const coverage = newCoverage();
let token: string;

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'model', 600);
});

describe.concurrent('session model paths, each replayed against a real server', () => {
  plan.selected.forEach((p, i) => {
    it(`#${String(i + 1).padStart(2, '0')} ${describePath(p.path)}`, async () => {
      coverage.replayed++;
      await replayPath(p.path, { token, coverage });
      coverage.passed++;
      for (const item of p.items) coverage.items.add(item);
    }, 20_000);
  });
});

describe('session model against the contract', () => {
  it('on every generated path (all of them, in memory), the machine goes where README says and sends the frames it lists', () => {
    const shown = plan.violations.slice(0, 5).map((v) => `\n  ${v.path}\n    ${v.violation}`);
    expect(plan.violations.length, `generated paths that break the contract, for example:${shown.join('')}\n`).toBe(0);
  });
});

describe('session model coverage', () => {
  it('the generated paths cover every state node and every transition the session machine defines', () => {
    const { modelMissing } = checkCoverage(plan, coverage);
    expect(modelMissing, 'a state or transition of machines/session.machine.ts that no model path covers: teach session-model.ts the event that takes it').toEqual({
      transitions: [],
      nodes: [],
    });
  });

  it('the replays exercised every state node and transition on real servers, and the supervisor spawned and reaped sessions', () => {
    const { realMissing, summary } = checkCoverage(plan, coverage);
    console.log(summary);
    expect(coverage.passed, 'every selected path replays and passes').toBe(plan.selected.length);
    expect(realMissing).toEqual({ transitions: [], nodes: [], supervisor: [], items: [] });
  });
});
