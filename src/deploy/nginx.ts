/**
 * `autoprox nginx`: an nginx server block that puts TLS in front of autoprox and proxies the
 * WebSocket endpoint, the API and the live page. The README shows its default rendering, and a
 * test runs real nginx with it.
 */
export interface NginxOptions {
  /** `listen` argument: "443 ssl" (default) or e.g. "127.0.0.1:8443 ssl" / "127.0.0.1:8081". */
  listen: string;
  serverName: string;
  /** autoprox's --host:--port. */
  upstream: string;
  /** null: no TLS at nginx (only for tests on loopback). */
  tls: { cert: string; key: string } | null;
  /** proxy_read_timeout / proxy_send_timeout for WebSockets and the event stream (s). */
  idleTimeoutS: number;
}

export const NGINX_DEFAULTS: NginxOptions = {
  listen: '443 ssl',
  serverName: 'autoprox.example.org',
  upstream: '127.0.0.1:8080',
  tls: { cert: '/etc/ssl/autoprox/fullchain.pem', key: '/etc/ssl/autoprox/privkey.pem' },
  idleTimeoutS: 3600,
};

export function nginxConfig(options: Partial<NginxOptions> = {}): string {
  const o = { ...NGINX_DEFAULTS, ...options };
  const tls = o.tls
    ? `    ssl_certificate     ${o.tls.cert};
    ssl_certificate_key ${o.tls.key};
    ssl_protocols       TLSv1.2 TLSv1.3;
`
    : '';
  return `# autoprox behind nginx. Start autoprox with --trust-proxy 127.0.0.1 (nginx's address as
# autoprox sees it) so that rate limits and logs see the client, not nginx.
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}

upstream autoprox {
    server ${o.upstream};
}

server {
    listen ${o.listen};
    server_name ${o.serverName};
${tls}
    location /v0/ws/proxy {
        proxy_pass http://autoprox;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # A quiet WebSocket is not a dead one: nginx's 60 s default would cut idle sessions.
        # autoprox also pings every --ws-ping-ms (30 s), well inside this.
        proxy_read_timeout ${o.idleTimeoutS}s;
        proxy_send_timeout ${o.idleTimeoutS}s;
        proxy_buffering off;
    }

    location / {
        proxy_pass http://autoprox;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # /v0/sessions/events is a server-sent event stream: no buffering, no early timeout.
        proxy_buffering off;
        proxy_read_timeout ${o.idleTimeoutS}s;
    }
}
`;
}
