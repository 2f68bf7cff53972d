/**
 * What a verified token grants. Optional autoprox claims (all documented in README):
 * - `apx_max_sessions`: at most this many concurrent sessions for the token's subject
 *   (the lower of it and --max-sessions-per-subject applies);
 * - `apx_targets`: the only targets its sessions may send to, as rules like "10.0.0.0/8",
 *   "192.0.2.7/32:40000", "[2001:db8::/32]:40000-40100";
 * - `apx_admin`: true lets the token read the admin endpoints.
 */
import type { JWTPayload } from 'jose';
import { Refusal } from '../errors.js';
import { parseTargetRule, type TargetRule } from '../net/target-policy.js';

export const CLAIM_MAX_SESSIONS = 'apx_max_sessions';
export const CLAIM_TARGETS = 'apx_targets';
export const CLAIM_ADMIN = 'apx_admin';
/** Subject of tokens without `sub`: they share one per-subject budget. */
export const NO_SUBJECT = '(no sub)';
const MAX_TARGET_RULES = 64;

export interface Grants {
  subject: string;
  maxSessions: number | null;
  targets: TargetRule[] | null;
  admin: boolean;
  /** `exp`, in ms since the epoch. */
  expiresAtMs: number;
}

function badClaim(claim: string, message: string): Refusal {
  return new Refusal(401, 'invalid_token', `the token's ${claim} claim ${message}`, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
}

export function grantsOf(payload: JWTPayload): Grants | Refusal {
  const subject = typeof payload.sub === 'string' && payload.sub.length > 0 ? payload.sub : NO_SUBJECT;
  const max = payload[CLAIM_MAX_SESSIONS];
  if (max !== undefined && (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1)) {
    return badClaim(CLAIM_MAX_SESSIONS, 'must be a whole number of at least 1');
  }
  const rawTargets = payload[CLAIM_TARGETS];
  let targets: TargetRule[] | null = null;
  if (rawTargets !== undefined) {
    if (!Array.isArray(rawTargets) || rawTargets.length > MAX_TARGET_RULES || !rawTargets.every((t) => typeof t === 'string')) {
      return badClaim(CLAIM_TARGETS, `must be an array of at most ${MAX_TARGET_RULES} strings`);
    }
    targets = [];
    for (const text of rawTargets as string[]) {
      const rule = parseTargetRule(text);
      if ('error' in rule) return badClaim(CLAIM_TARGETS, `has a bad entry: ${rule.error}`);
      targets.push(rule);
    }
  }
  const admin = payload[CLAIM_ADMIN];
  if (admin !== undefined && typeof admin !== 'boolean') return badClaim(CLAIM_ADMIN, 'must be true or false');
  return {
    subject,
    maxSessions: (max as number | undefined) ?? null,
    targets,
    admin: admin === true,
    expiresAtMs: (payload.exp ?? 0) * 1000,
  };
}
