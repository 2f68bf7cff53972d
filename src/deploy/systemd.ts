/**
 * `autoprox systemd [--relay]`: a hardened systemd unit for the server (or the relay). Secrets
 * come from an environment file readable by root only; the config file holds the rest (the
 * relay takes its flags as AUTOPROX_<NAME> from its environment file). Stop is SIGTERM. The server
 * runs with the node flags of node-flags.ts.
 */
import { SERVER_NODE_FLAGS } from './node-flags.js';

export interface SystemdOptions {
  /** The server (`serve`) or the relay (`relay`). */
  role: 'serve' | 'relay';
  /** Where the package is installed (holds dist/ and package.json). */
  installDir: string;
  configFile: string;
  environmentFile: string;
  /** Must exceed --drain-delay-ms + --shutdown-grace-ms (s). */
  stopTimeoutS: number;
}

export const SYSTEMD_DEFAULTS: SystemdOptions = {
  role: 'serve',
  installDir: '/opt/autoprox',
  configFile: '/etc/autoprox/autoprox.yaml',
  environmentFile: '/etc/autoprox/secrets.env',
  stopTimeoutS: 30,
};

/** The relay's own defaults: its environment file, and little to drain. */
const RELAY_DEFAULTS: Partial<SystemdOptions> = { environmentFile: '/etc/autoprox/relay.env', stopTimeoutS: 10 };

export function systemdUnit(options: Partial<SystemdOptions> = {}): string {
  const o = { ...SYSTEMD_DEFAULTS, ...(options.role === 'relay' ? RELAY_DEFAULTS : {}), ...options };
  const service =
    o.role === 'relay'
      ? `# /etc/systemd/system/autoprox-relay.service
[Unit]
Description=autoprox relay: forwards sealed datagrams for autoprox servers that cannot punch through
Documentation=file://${o.installDir}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/node ${o.installDir}/dist/src/cli.js relay
# AUTOPROX_RELAY_SECRET=... and the flags as AUTOPROX_<NAME> (AUTOPROX_UDP_PORT=3478, ...).
EnvironmentFile=${o.environmentFile}`
      : `# /etc/systemd/system/autoprox.service
[Unit]
Description=autoprox: WebSocket clients peer to peer over hole-punched, encrypted UDP
Documentation=file://${o.installDir}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/node ${SERVER_NODE_FLAGS.join(' ')} ${o.installDir}/dist/src/cli.js serve --config ${o.configFile}
# AUTOPROX_JWT_SECRET=... (and AUTOPROX_REDIS_URL with a password): keep secrets out of the config file.
EnvironmentFile=${o.environmentFile}
ExecReload=/bin/kill -HUP $MAINPID`;
  return `${service}
KillSignal=SIGTERM
TimeoutStopSec=${o.stopTimeoutS}
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

# Hardening: no user account, no privileges, a read-only system, nothing else to see.
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
# V8 compiles code at run time: MemoryDenyWriteExecute=yes would stop Node.

[Install]
WantedBy=multi-user.target
`;
}
