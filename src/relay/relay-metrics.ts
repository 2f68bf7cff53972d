/** The relay's Prometheus metrics, read from its counters at each scrape (nothing per datagram). */
import { Counter, Gauge, Registry } from 'prom-client';
import { RELAY_DROP_CAUSES, type Relay } from './relay.js';

export function relayMetrics(relay: Relay): Registry {
  const registry = new Registry();
  const registers = [registry];
  const c = relay.counters;
  new Gauge({ name: 'autoprox_relay_bindings', help: 'Channel ends bound now', registers, collect() { this.set(relay.table.ends); } });
  new Gauge({ name: 'autoprox_relay_pairs', help: 'Pairs of ends forwarded between now', registers, collect() { this.set(relay.table.pairs); } });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
  counter('autoprox_relay_forwarded_datagrams_total', 'Datagrams forwarded between paired ends', () => c.forwardedDatagrams);
  counter('autoprox_relay_forwarded_bytes_total', 'Bytes forwarded between paired ends', () => c.forwardedBytes);
  counter('autoprox_relay_stun_answers_total', 'STUN Binding requests answered', () => c.stunAnswers);
  counter('autoprox_relay_challenges_total', 'BIND_REQUESTs answered with a cookie', () => c.challenges);
  counter('autoprox_relay_binds_total', 'BINDs accepted (new ends and refreshes)', () => c.binds);
  counter('autoprox_relay_approvals_total', 'APPROVEs accepted', () => c.approvals);
  new Counter({
    name: 'autoprox_relay_drops_total',
    help: 'Datagrams dropped, by cause',
    labelNames: ['cause'],
    registers,
    collect() {
      this.reset();
      for (const cause of RELAY_DROP_CAUSES) this.inc({ cause }, c.drops[cause]);
    },
  });
  return registry;
}
