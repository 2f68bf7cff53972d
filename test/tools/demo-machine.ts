import { and, fromPromise, not, or, setup } from 'xstate';

/**
 * A small hand-made machine with one of everything the diagram generator draws: compound,
 * parallel and final states, a history state, root transitions, `always`, named and numeric
 * `after` delays, invoke `onDone`/`onError`, a state's own `onDone`, guards (named, and/or/not),
 * a targetless transition, a re-entering self-transition and a transition into an ancestor.
 */
export const demoMachine = setup({
  actors: { fetchThing: fromPromise(async () => 1) },
  actions: { log: () => {} },
  guards: { ready: () => true, open: () => true, late: () => false },
  delays: { retryDelay: 100 },
}).createMachine({
  id: 'demo',
  description: 'A hand-made machine.',
  initial: 'idle',
  on: {
    reset: '.idle',
    ping: { actions: 'log' },
    resume: '.working.hist',
  },
  states: {
    idle: {
      description: 'Waiting for start.',
      on: { start: { guard: 'ready', target: 'working' }, poke: { target: 'idle', actions: 'log' } },
      always: { guard: and(['open', not('late')]), target: 'done' },
    },
    working: {
      initial: 'fetching',
      on: { restart: { target: 'working', reenter: true } },
      after: { retryDelay: { guard: or(['late', 'open']), target: 'idle' }, 500: 'idle' },
      states: {
        fetching: {
          invoke: { src: 'fetchThing', onDone: 'both', onError: '#demo.failed' },
        },
        both: {
          type: 'parallel',
          onDone: 'finished',
          states: {
            left: { initial: 'a', states: { a: { on: { next: 'b' } }, b: { type: 'final' } } },
            right: {
              initial: 'c',
              states: {
                c: { on: { again: { target: 'c', reenter: true }, up: '#demo.working', stop: 'd' } },
                d: { type: 'final' },
              },
            },
          },
        },
        finished: { type: 'final' },
        hist: { type: 'history', history: 'deep' },
      },
    },
    done: { type: 'final', description: 'All done.' },
    failed: { type: 'final' },
  },
});
