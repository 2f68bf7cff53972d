/**
 * The `bridge` actor of a session: claims the session's link from the hand-off and connects
 * it to the machine (link events -> machine, machine commands -> link).
 */
import { fromCallback } from 'xstate';
import type { BridgeCommand, BridgeInput, SessionEvent } from '../../machines/types.js';
import type { LinkHandoff } from './handoff.js';
import type { SessionLink } from './session-link.js';

export function createBridgeActor(handoff: LinkHandoff<SessionLink>) {
  return fromCallback<BridgeCommand, BridgeInput>(({ input, sendBack, receive }) => {
    const link = handoff.claim(input.sessionId);
    if (!link) throw new Error(`no pending link for session ${input.sessionId}`);
    link.attach((event: SessionEvent) => sendBack(event));
    receive((command) => link.handle(command));
    return () => link.dispose();
  });
}
