/**
 * What a person (or a monitoring system) sees of a session, derived from its statechart
 * snapshot. Pure.
 */
import type { SessionContext } from '../../machines/session.machine.js';
import type { LinkStatus, PathKind } from '../../machines/types.js';
import { formatEndpoint, type Family } from '../../machines/endpoint.js';

/**
 * Leaf states that add nothing to a state's name (timers, transient choices, and the direct path:
 * an established session is `udp_established` as it always was, a relayed one
 * `udp_established.relayed`).
 */
const QUIET_LEAVES = new Set(['tick', 'select_family', 'select_path', 'direct']);

export interface SessionStateView {
  /** e.g. "udp_waiting.ipv6", "udp_established", "closed". */
  state: string;
  status: LinkStatus;
  family: Family | null;
  peer: string | null;
  rttMs: number | null;
  /** Established: `direct`, or `relay` when the datagrams go through a relay (then `peer` is the relay). */
  path: PathKind | null;
  /** Ids of every active state node ("session.udp_waiting.ipv6"), to highlight on a diagram. */
  activeStates: string[];
}

type StateValue = string | { [key: string]: StateValue };

const STATUS_OF: Record<string, LinkStatus> = {
  connected: 'CONNECTED',
  udp_waiting: 'UDP_WAITING',
  udp_established: 'UDP_ESTABLISHED',
  closed: 'CLOSED',
};

/** Every active state node id under `prefix`. */
export function activeStateIds(value: StateValue, prefix = 'session'): string[] {
  if (typeof value === 'string') return [`${prefix}.${value}`];
  return Object.entries(value).flatMap(([key, child]) => [`${prefix}.${key}`, ...activeStateIds(child, `${prefix}.${key}`)]);
}

/** "udp_waiting.ipv6": the path to the deepest state that means something; parallel regions stop it. */
export function stateLabel(value: StateValue): string {
  const parts: string[] = [];
  let node: StateValue = value;
  for (;;) {
    if (typeof node === 'string') {
      if (!QUIET_LEAVES.has(node)) parts.push(node);
      return parts.join('.');
    }
    const keys = Object.keys(node);
    if (keys.length !== 1) return parts.join('.');
    parts.push(keys[0]!);
    node = node[keys[0]!]!;
  }
}

/**
 * The active state ids of each label, one frozen array shared by every session in that state: a
 * label names one configuration of this machine (the leaves it hides are the only children of
 * their parents, or, for `direct`, the only one a label without a leaf can mean), and the machine has a few dozen, so this holds a few dozen arrays at most.
 */
const ACTIVE_STATES = new Map<string, string[]>();

function activeStatesOf(state: string, value: StateValue): string[] {
  let ids = ACTIVE_STATES.get(state);
  if (!ids) {
    ids = Object.freeze(['session', ...activeStateIds(value)]) as string[];
    ACTIVE_STATES.set(state, ids);
  }
  return ids;
}

/**
 * The view of a snapshot. `previous` (the view of the session's last snapshot) lends its
 * `activeStates` when the state is the same; every session in one state shares one array.
 */
export function viewOf(snapshot: { value: unknown; context: SessionContext }, previous?: SessionStateView): SessionStateView {
  const value = snapshot.value as StateValue;
  const state = stateLabel(value);
  const top = state.split('.')[0]!;
  const status = STATUS_OF[top] ?? 'CONNECTED';
  const { peer } = snapshot.context;
  let family: Family | null = null;
  if (status === 'UDP_WAITING') family = state.endsWith('ipv6') ? 'ipv6' : state.endsWith('ipv4') ? 'ipv4' : null;
  if (status === 'UDP_ESTABLISHED' && peer) family = peer.endpoint.family;
  return {
    state,
    status,
    family,
    peer: status === 'UDP_ESTABLISHED' && peer ? formatEndpoint(peer.endpoint) : null,
    rttMs: status === 'UDP_ESTABLISHED' && peer ? Math.round(peer.rttMs * 1000) / 1000 : null,
    path: status === 'UDP_ESTABLISHED' && peer ? (state === 'udp_established.relayed' ? 'relay' : 'direct') : null,
    activeStates: previous?.state === state ? previous.activeStates : activeStatesOf(state, value),
  };
}
