/**
 * Real nginx (Debian's package) on loopback, with autoprox's server block wrapped in a minimal
 * main configuration whose files all live in a temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX = '/usr/sbin/nginx';
export const nginxAvailable = spawnSync(NGINX, ['-v']).status === 0;
export const nginxRequired = process.env.AUTOPROX_REQUIRE_NGINX === '1';

export interface RunningNginx {
  stop(): Promise<void>;
}

/** Runs nginx in the foreground with `serverBlock` in its http{} section; resolves once `port` accepts. */
export async function startNginx(serverBlock: string, port: number): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'autoprox-nginx-'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${serverBlock}
}
`,
  );
  const test = spawnSync(NGINX, ['-t', '-c', conf, '-p', dir]);
  if (test.status !== 0) throw new Error(`nginx -t refused the configuration:\n${test.stderr.toString()}`);
  const proc: ChildProcess = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nginx did not listen on ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      proc.kill('SIGQUIT');
      await new Promise((r) => {
        proc.once('exit', r);
        setTimeout(() => {
          proc.kill('SIGKILL');
          r(null);
        }, 2000);
      });
    },
  };
}
