/**
 * One session per WebSocket: connected -> udp_waiting -> udp_established -> closed.
 *
 * Pure statechart. All IO is in two actors handed in through `.provide({ actors })`:
 * - `bridge`: the session's IO (WebSocket, UDP sends, AES-GCM). It receives BridgeCommands
 *   and sends back SessionEvents (authenticated heartbeats, peer CLOSE, WebSocket close).
 * - `resolveTargets`: turns the client's `host` parameters into candidate endpoints.
 * Every timing is a named delay read from context; time comes from XState's clock only.
 * Long: the statechart is one specification, read top to bottom (its pure rules are in
 * session-context.ts); splitting its states over files would hide the fallback branch.
 */
import { assign, enqueueActions, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import { sameEndpoint } from './endpoint.js';
import {
  credit,
  creditFromRelay,
  directTargets,
  echoesFreshly,
  echoOf,
  establishedFrame,
  frame,
  isRelay,
  MAX_RETIRED_PEERS,
  MESSAGES,
  prove,
  punchDelayMs,
  punchTargets,
  relayAfterMs,
  relayFor,
  relayPunchTargets,
  spend,
  type SessionContext,
} from './session-context.js';
import {
  CLOSE_CODES,
  type BridgeCommand,
  type BridgeInput,
  type CloseReason,
  type Echo,
  type Endpoint,
  type Family,
  type PeerHeartbeatEvent,
  type ResolveInput,
  type ResolvedTargets,
  type SessionEvent,
  type SessionInput,
  type SessionOutput,
  type WaitReason,
} from './types.js';

export {
  DEFAULT_RELAY_AFTER_MS,
  directTargets,
  isRelay,
  relayPunchTargets,
  MAX_LEARNED_ENDPOINTS,
  MAX_RETIRED_PEERS,
  PUNCHES_AT_FULL_RATE,
  RELAY_PEER_CREDIT,
  punchDelayMs,
  punchTargets,
  type LearnedEndpoint,
  type PeerPath,
  type SessionContext,
} from './session-context.js';

/**
 * A punching phase for one family: report it, heartbeat at once and every punch interval (backing
 * off to the heartbeat interval after PUNCHES_AT_FULL_RATE), establish on proof, answer a newly
 * heard peer session at once.
 */
function punching(family: Family | 'relay') {
  const punch = { type: 'punch', params: { family } } as const;
  return {
    // The relay step says nothing new to the client (still UDP_WAITING): it asks the IO to bind.
    entry: family === 'relay' ? (['startPunching', 'relayWant', punch] as const) : ([{ type: 'reportWaiting', params: { family } } as const, 'startPunching', punch] as const),
    initial: 'tick' as const,
    states: {
      tick: {
      description: 'One punch interval (the full rate first, then backing off); each one sends a heartbeat.',
      after: { punchInterval: { target: 'tick', reenter: true, actions: punch } },
    },
    },
    on: {
      'peer.heartbeat': [
        {
          guard: { type: 'provesPath', params: ({ event }: { event: PeerHeartbeatEvent }) => event },
          target: '#session.udp_established',
          actions: { type: 'adoptPeer', params: ({ event }: { event: PeerHeartbeatEvent }) => event },
        },
        {
          // First word from a peer session: answer its source at once (and only it).
          guard: { type: 'isNewVoice', params: ({ event }: { event: PeerHeartbeatEvent }) => event },
          actions: [
            { type: 'recordHeard', params: ({ event }: { event: PeerHeartbeatEvent }) => event },
            { type: 'answer', params: ({ event }: { event: PeerHeartbeatEvent }) => event.from },
          ],
        },
        { actions: { type: 'recordHeard', params: ({ event }: { event: PeerHeartbeatEvent }) => event } },
      ],
    },
  } as const;
}

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionInput,
    events: {} as SessionEvent,
    output: {} as SessionOutput,
  },
  actors: {
    // Placeholders: the server provides the real ones, tests provide their own.
    bridge: fromCallback<BridgeCommand, BridgeInput>(() => {
      throw new Error('session machine: provide a `bridge` actor');
    }),
    resolveTargets: fromPromise<ResolvedTargets, ResolveInput>(async () => {
      throw new Error('session machine: provide a `resolveTargets` actor');
    }),
  },
  delays: {
    punchInterval: ({ context }) => punchDelayMs(context.timing, context.punches),
    fallbackDelay: ({ context }) => context.timing.fallbackMs,
    relayAfter: ({ context }) => relayAfterMs(context.timing),
    punchTimeout: ({ context }) => context.timing.punchTimeoutMs,
  },
  guards: {
    hasCandidates: (_, targets: ResolvedTargets) => targets.candidates.length > 0,
    hasIpv6Candidates: ({ context }) => context.candidates.some((c) => c.family === 'ipv6'),
    hasIpv4Candidates: ({ context }) => context.candidates.some((c) => c.family === 'ipv4'),
    punchTimeoutEnabled: ({ context }) => context.timing.punchTimeoutMs > 0,
    hasRelays: ({ context }) => context.relays.length > 0,
    /** The adopted peer's endpoint is a relay's: the path goes through it. */
    pathViaRelay: ({ context }) => context.peer !== null && isRelay(context, context.peer.endpoint),
    /** The peer session has heard this one recently, and is not one that already said goodbye. */
    provesPath: ({ context }, event: PeerHeartbeatEvent) => echoesFreshly(context, event) && !context.retired.includes(event.peerSalt),
    isNewVoice: ({ context }, event: PeerHeartbeatEvent) => context.heard?.salt !== event.peerSalt,
    isCurrentPeer: ({ context }, peerSalt: string) => context.peer?.salt === peerSalt,
    /** ... from a new address or port (NAT rebinding). */
    peerMoved: ({ context }, event: PeerHeartbeatEvent) =>
      context.peer?.salt === event.peerSalt && echoesFreshly(context, event) && !sameEndpoint(context.peer.endpoint, event.from),
    /** ... from a place that is not a relay: a direct path proved itself. */
    peerMovedDirect: ({ context }, event: PeerHeartbeatEvent) =>
      context.peer?.salt === event.peerSalt && echoesFreshly(context, event) && !sameEndpoint(context.peer.endpoint, event.from) && !isRelay(context, event.from),
    /** ... through a relay (the peer is relayed and we are not, yet). */
    peerMovedViaRelay: ({ context }, event: PeerHeartbeatEvent) =>
      context.peer?.salt === event.peerSalt && echoesFreshly(context, event) && isRelay(context, event.from) && !sameEndpoint(context.peer.endpoint, event.from),
  },
  actions: {
    reportConnected: sendTo('bridge', ({ context }) => frame(context, 'CONNECTED')),
    reportWaiting: sendTo('bridge', ({ context }, params: { family: Family }) =>
      frame(context, 'UDP_WAITING', {
        family: params.family,
        ...(context.waitReason
          ? { reason: context.waitReason, message: MESSAGES[context.waitReason](context.timing) }
          : {}),
      }),
    ),
    reportEstablished: sendTo('bridge', ({ context }) => establishedFrame(context)),
    reportClosed: sendTo('bridge', ({ context }) =>
      frame(context, 'CLOSED', {
        reason: context.closeReason!,
        message: context.closeMessage ?? MESSAGES[context.closeReason!](context.timing),
      }),
    ),
    punch: enqueueActions(({ context, enqueue }, params: { family: Family | 'relay' }) => {
      const to = params.family === 'relay' ? relayPunchTargets(context) : punchTargets(context, params.family);
      enqueue.sendTo('bridge', { type: 'heartbeat', to, echo: context.heard } satisfies BridgeCommand);
      enqueue.assign({ learned: spend(context.learned, to), punches: context.punches + 1 });
    }),
    /** Relayed: heartbeats to the direct places too (echoing what the path heard), so a direct path can prove itself. */
    probe: enqueueActions(({ context, enqueue }) => {
      const to = directTargets(context);
      enqueue.sendTo('bridge', { type: 'probe', to } satisfies BridgeCommand);
      enqueue.assign({ learned: spend(context.learned, to), punches: context.punches + 1 });
    }),
    /** With relays: the IO binds the session's channel there (once per channel and relay); without, nothing. */
    relayWant: enqueueActions(({ context, enqueue }) => {
      if (context.relays.length > 0) enqueue.sendTo('bridge', { type: 'relay.want' } satisfies BridgeCommand);
    }),
    /** The direct path died: the path goes on through the relay of its family (or the first). */
    viaRelay: assign(({ context }) => ({
      peer: { ...context.peer!, endpoint: relayFor(context, context.peer!.endpoint.family) },
    })),
    noteHeard: assign((_, event: PeerHeartbeatEvent) => ({ heard: echoOf(event) })),
    startPunching: assign({ punches: 0 }),
    answer: enqueueActions(({ context, enqueue }, to: Endpoint) => {
      enqueue.sendTo('bridge', { type: 'heartbeat', to: [to], echo: context.heard } satisfies BridgeCommand);
      enqueue.assign({ learned: spend(context.learned, [to]) });
    }),
    openPath: sendTo('bridge', ({ context }) => ({
      type: 'path.up' as const,
      peerSalt: context.peer!.salt,
      endpoint: context.peer!.endpoint,
      echo: context.heard,
      rttMs: context.peer!.rttMs,
    })),
    closePath: sendTo('bridge', { type: 'path.down' }),
    closeBridge: sendTo('bridge', ({ context }) => ({
      type: 'close' as const,
      code: CLOSE_CODES[context.closeReason!],
      reason: context.closeReason!,
    })),
    recordCandidates: assign({ candidates: (_, targets: ResolvedTargets) => targets.candidates }),
    recordHeard: assign(({ context }, event: PeerHeartbeatEvent) => ({
      heard: echoOf(event),
      learned: credit(context.learned, event.from),
    })),
    /** A relay's paired ends (the peer servers' public endpoints): learned, never a relay, only of our families. */
    learnRelayPeers: assign(({ context }, endpoints: Endpoint[]) => ({
      learned: creditFromRelay(
        context.learned,
        endpoints.filter((e) => context.families.includes(e.family) && !isRelay(context, e)),
      ),
    })),
    adoptPeer: assign((_, event: PeerHeartbeatEvent) => ({
      peer: { salt: event.peerSalt, endpoint: event.from, rttMs: event.rttMs ?? 0 },
      heard: echoOf(event),
      waitReason: null,
    })),
    refreshPeer: assign(({ context }, event: PeerHeartbeatEvent) => ({
      peer: {
        salt: context.peer!.salt,
        endpoint: event.from,
        rttMs: event.rttMs ?? context.peer!.rttMs,
      },
      heard: echoOf(event),
    })),
    noteSilence: assign((_, heard: Echo | null) => ({ heard })),
    losePeer: assign(({ context }, reason: WaitReason) => ({
      waitReason: reason,
      learned: context.peer ? prove(context.learned, context.peer.endpoint) : context.learned,
      peer: null,
    })),
    retire: assign(({ context }, peerSalt: string) => ({
      retired: [peerSalt, ...context.retired.filter((s) => s !== peerSalt)].slice(0, MAX_RETIRED_PEERS),
      heard: context.heard?.salt === peerSalt ? null : context.heard,
    })),
    setClose: assign((_, params: { reason: CloseReason; message?: string }) => ({
      closeReason: params.reason,
      closeMessage: params.message ?? null,
    })),
  },
}).createMachine({
  id: 'session',
  description: 'One WebSocket client bridged to one peer over hole-punched, encrypted UDP.',
  context: ({ input }) => ({
    id: input.id,
    io: input.io,
    hosts: input.hosts,
    port: input.port,
    families: input.families,
    timing: input.timing,
    relays: (input.relays ?? []).filter((r) => input.families.includes(r.family)),
    candidates: [],
    learned: [],
    peer: null,
    heard: null,
    retired: [],
    punches: 0,
    waitReason: null,
    closeReason: null,
    closeMessage: null,
  }),
  invoke: { id: 'bridge', src: 'bridge', input: ({ context }) => ({ sessionId: context.id, io: context.io }) },
  initial: 'connected',
  on: {
    'ws.closed': { target: '.closed', actions: { type: 'setClose', params: { reason: 'client_closed' } } },
    'server.shutdown': { target: '.closed', actions: { type: 'setClose', params: { reason: 'server_shutdown' } } },
    'token.expired': { target: '.closed', actions: { type: 'setClose', params: { reason: 'token_expired' } } },
    // Whatever the state when a peer session says CLOSE (resolving, waiting, established with
    // another peer session), it is never adopted again: a late heartbeat of it must not be.
    'peer.close': { actions: { type: 'retire', params: ({ event }) => event.peerSalt } },
    // The peer servers' public endpoints as a relay sees them (issue 12: "tells the peer its
    // current endpoints through the relay so both sides punch again"): punched and probed from
    // now on, as heard sources are. Both servers learn each other's, so both punch.
    'relay.peers': { actions: { type: 'learnRelayPeers', params: ({ event }) => event.endpoints } },
  },
  states: {
    connected: {
      description: 'WebSocket accepted; resolving the peer candidates.',
      entry: 'reportConnected',
      invoke: {
        src: 'resolveTargets',
        input: ({ context }) => ({
          sessionId: context.id,
          hosts: context.hosts,
          port: context.port,
          families: context.families,
          deny: (endpoint: Endpoint) => context.io.deny(endpoint),
        }),
        onDone: [
          {
            guard: { type: 'hasCandidates', params: ({ event }) => event.output },
            target: 'udp_waiting',
            actions: { type: 'recordCandidates', params: ({ event }) => event.output },
          },
          {
            target: 'closed',
            actions: {
              type: 'setClose',
              params: ({ event }) => ({
                reason: 'no_candidates' as const,
                message: `no usable peer address: ${event.output.problems.join('; ') || 'nothing resolved'}`,
              }),
            },
          },
        ],
        onError: {
          target: 'closed',
          actions: {
            type: 'setClose',
            params: ({ event }) => ({ reason: 'no_candidates' as const, message: `resolving failed: ${String(event.error)}` }),
          },
        },
      },
    },

    udp_waiting: {
      description:
        'Punching: heartbeats to the candidates every punch interval, IPv6 first, IPv4 after the fallback delay. ' +
        'An authenticated heartbeat that echoes ours proves the path both ways.',
      initial: 'select_family',
      after: {
        punchTimeout: {
          guard: 'punchTimeoutEnabled',
          target: 'closed',
          actions: { type: 'setClose', params: { reason: 'punch_timeout' } },
        },
        // The last step of the fallback branch: nothing direct proved itself in time.
        relayAfter: { guard: 'hasRelays', target: '.relay' },
      },
      states: {
        select_family: {
          description: 'IPv6 first when there is an IPv6 candidate, else IPv4.',
          always: [{ guard: 'hasIpv6Candidates', target: 'ipv6' }, { target: 'ipv4' }],
        },
        ipv6: {
          description: 'Punching IPv6 candidates (and learned endpoints) only.',
          after: { fallbackDelay: { guard: 'hasIpv4Candidates', target: 'ipv4' } },
          ...punching('ipv6'),
        },
        ipv4: {
          description: 'Fallen back: punching IPv4 candidates (and learned endpoints).',
          ...punching('ipv4'),
        },
        relay: {
          description:
            'Nothing direct proved itself within the relay delay: the IO binds the channel at the relays, and the session ' +
            'punches the candidates of both families, the learned endpoints and the relays (which forward once paired).',
          ...punching('relay'),
        },
      },
    },

    udp_established: {
      description:
        'The path works both ways: data flows. Its IO keeps it (a heartbeat every heartbeat interval) and watches it ' +
        '(peer.silent: no heartbeat echoed us freshly for the peer timeout); only what changes the state comes here.',
      // The IO sends the first heartbeat at path.up, before queued data: the peer hears the proof first.
      entry: ['reportEstablished', 'openPath'],
      exit: 'closePath',
      initial: 'select_path',
      states: {
        select_path: {
          description: 'Relayed when the adopted peer endpoint is a relay, else direct.',
          always: [{ guard: 'pathViaRelay', target: 'relayed' }, { target: 'direct' }],
        },
        direct: {
          description:
            'Straight to the peer server. With relays, the channel is bound there too (warm: the relay pairs both ends ' +
            'while the direct path works, so that it carries the path at once when the direct path dies). A heartbeat ' +
            'through a relay never pulls the path there.',
          entry: 'relayWant',
          on: {
            // The peer is relayed and we are not: what we echo follows it (as the IO does), nothing else.
            'peer.heartbeat': {
              guard: { type: 'peerMovedViaRelay', params: ({ event }) => event },
              actions: { type: 'noteHeard', params: ({ event }) => event },
            },
            // The direct path died: on through the relay at once, no UDP_WAITING in between.
            'peer.silent': {
              guard: 'hasRelays',
              target: 'relayed',
              actions: [{ type: 'noteSilence', params: ({ event }) => event.heard }, 'viaRelay', 'openPath', 'reportEstablished'],
            },
          },
        },
        relayed: {
          description:
            'Through a relay: the relay forwards the sealed datagrams unchanged. The session keeps probing the direct ' +
            'places every punch interval (backing off) and moves to direct as soon as the peer answers there.',
          entry: ['startPunching', 'relayWant', 'probe'],
          initial: 'tick',
          states: {
            tick: {
              description: 'One probe interval (the full rate first, then backing off); each one probes the direct places.',
              after: { punchInterval: { target: 'tick', reenter: true, actions: 'probe' } },
            },
          },
          on: {
            'peer.heartbeat': {
              guard: { type: 'peerMovedDirect', params: ({ event }) => event },
              target: 'direct',
              actions: [{ type: 'refreshPeer', params: ({ event }) => event }, 'openPath', 'reportEstablished'],
            },
          },
        },
      },
      on: {
        // NAT rebinding: the same peer session, echoing us freshly, from a new address or port.
        'peer.heartbeat': {
          guard: { type: 'peerMoved', params: ({ event }) => event },
          actions: [{ type: 'refreshPeer', params: ({ event }) => event }, 'openPath', 'reportEstablished'],
        },
        'peer.silent': {
          target: 'udp_waiting',
          actions: [{ type: 'noteSilence', params: ({ event }) => event.heard }, { type: 'losePeer', params: 'peer_timeout' }],
        },
        // Another peer session's CLOSE falls through to the root, which retires it.
        'peer.close': {
          guard: { type: 'isCurrentPeer', params: ({ event }) => event.peerSalt },
          target: 'udp_waiting',
          actions: [
            { type: 'retire', params: ({ event }) => event.peerSalt },
            { type: 'losePeer', params: 'peer_closed' },
          ],
        },
      },
    },

    closed: {
      description: 'Final: the client is told why, the peer is told CLOSE, the WebSocket is closed.',
      type: 'final',
      entry: ['reportClosed', 'closeBridge'],
    },
  },
  output: ({ context }) => ({ id: context.id, reason: context.closeReason ?? 'client_closed' }),
});
