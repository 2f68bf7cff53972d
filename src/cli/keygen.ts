import { randomBytes } from 'node:crypto';
import { PSK_BYTES } from '../protocol/crypto.js';

/** A fresh pre-shared key, as the `key` query parameter expects it. */
export function generateKey(): string {
  return randomBytes(PSK_BYTES).toString('base64url');
}
