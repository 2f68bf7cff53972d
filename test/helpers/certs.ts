/**
 * A private CA and server certificates made inside the tests with Debian's openssl: nothing
 * disables verification; clients trust this CA explicitly.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  caCert: string;
  /** Issues a server certificate for 127.0.0.1 and localhost; returns its paths and serial. */
  issue(name: string): { cert: string; key: string; serial: string };
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function makeCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'autoprox-ca-'));
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=autoprox test CA']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n');
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    issue(name) {
      openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost']);
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', 'san.ext']);
      const serial = openssl(dir, ['x509', '-in', `${name}.pem`, '-noout', '-serial']).trim().replace(/^serial=/, '');
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), serial };
    },
  };
}
