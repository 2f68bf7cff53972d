/**
 * The `bridge` actor of a session: connects the machine to the session's IO, which comes with
 * the session's input (SessionPort): IO events -> machine, machine commands -> IO, and the IO
 * let go when the machine stops.
 */
import { fromCallback } from 'xstate';
import type { BridgeCommand, BridgeInput } from '../../machines/types.js';

export function createBridgeActor() {
  return fromCallback<BridgeCommand, BridgeInput>(({ input, sendBack, receive }) => {
    input.io.attach((event) => sendBack(event));
    receive((command) => input.io.handle(command));
    return () => input.io.detach();
  });
}
