/**
 * Admission's slots (issue 10, internal review): an exception between taking the server-wide
 * session slot and handing it to the session leaked the slot, so a server that met such errors
 * filled up and refused everyone with 503 server_full. Every way out of admission that is not
 * an admitted session gives the slot back.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { hs256Verifier } from '../../src/auth/verifier.js';
import { Refusal } from '../../src/errors.js';
import { admit, type AdmissionDeps } from '../../src/http/admission.js';
import { RequestLimits } from '../../src/limits/request-limits.js';
import { MemorySessionCounter, type SessionCounter } from '../../src/limits/session-counter.js';
import { TargetPolicy } from '../../src/net/target-policy.js';
import { TEST_SECRET } from '../helpers/server-process.js';

const KEY = Buffer.alloc(32, 1).toString('base64url');

function upgrade(query: string, token: string): IncomingMessage {
  return {
    url: `/v0/ws/proxy?${query}`,
    method: 'GET',
    headers: { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', authorization: `Bearer ${token}` },
  } as unknown as IncomingMessage;
}

function deps(sessions: SessionCounter, maxSessionsPerSubject = 0) {
  let held = 0;
  const d: AdmissionDeps = {
    verifier: hs256Verifier(TEST_SECRET),
    limits: new RequestLimits({ upgradesPerIpPerS: 0, authFailuresPerIp: 0, authFailureWindowS: 60, authBlockS: 60, limitLoopback: false }, null),
    sessions,
    policy: new TargetPolicy({ allow: null, deny: [], allowSelf: true, ownEndpoints: () => ({ ports: { ipv4: null, ipv6: null }, addresses: new BlockList() }) }),
    maxSessionsPerSubject,
    reserve: () => {
      held++;
      let released = false;
      return () => {
        if (!released) held--;
        released = true;
      };
    },
  };
  return { d, held: () => held };
}

describe('admission gives its slot back', () => {
  it('when a dependency throws after the slot was taken', async () => {
    const failing: SessionCounter = {
      acquire: async () => {
        throw new Error('the session store broke');
      },
      release: () => {},
      close: () => {},
    };
    const { d, held } = deps(failing, 5);
    const token = await mintToken(TEST_SECRET, 'alice', 60);
    await expect(admit(upgrade(`host=127.0.0.1&port=40000&key=${KEY}`, token), '127.0.0.1', 'id-1', d)).rejects.toThrow('the session store broke');
    expect(held()).toBe(0);
  });

  it('when refused after the slot was taken (a bad parameter), and keeps it when admitted', async () => {
    const { d, held } = deps(new MemorySessionCounter());
    const token = await mintToken(TEST_SECRET, 'alice', 60);
    const refused = await admit(upgrade('host=127.0.0.1&port=0&key=' + KEY, token), '127.0.0.1', 'id-2', d);
    expect(refused).toBeInstanceOf(Refusal);
    expect(held()).toBe(0);
    const admitted = await admit(upgrade(`host=127.0.0.1&port=40000&key=${KEY}`, token), '127.0.0.1', 'id-3', d);
    expect(admitted).not.toBeInstanceOf(Refusal);
    expect(held()).toBe(1); // the session's now
    if (!(admitted instanceof Refusal)) admitted.release();
    expect(held()).toBe(0);
  });
});
