/** A session's counters: what its two sides received, sent and dropped. One object, shared by both. */

export type LinkDropCause =
  | 'auth_failed'
  | 'replay'
  | 'unknown_peer'
  | 'early_overflow'
  | 'policy'
  | 'client_backpressure'
  | 'udp_ceiling'
  | 'own_packet'
  | 'no_socket';

export interface LinkStats {
  /** Authenticated datagrams received, and datagrams sent (heartbeats included). */
  datagramsIn: number;
  datagramsOut: number;
  /** Peer DATA authenticated (delivered or dropped for backpressure), and client messages sent as DATA. */
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesRejected: number;
  drops: Record<LinkDropCause, number>;
}

export function newLinkStats(): LinkStats {
  return {
    datagramsIn: 0,
    datagramsOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesRejected: 0,
    drops: {
      auth_failed: 0,
      replay: 0,
      unknown_peer: 0,
      early_overflow: 0,
      policy: 0,
      client_backpressure: 0,
      udp_ceiling: 0,
      own_packet: 0,
      no_socket: 0,
    },
  };
}
