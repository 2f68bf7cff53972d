/**
 * Regression (issue 10, internal review): every server started prom-client's default metrics,
 * and with them an event-loop-delay monitor and a GC observer that nothing ever stopped: a
 * process that starts and stops servers (the test suite, a program embedding autoprox) kept one
 * more of each per server for ever. Node's own metrics are now collected once per process.
 * The monitors are counted where prom-client makes them (node:perf_hooks), on real servers.
 */
import * as perfHooksModule from 'node:perf_hooks';
import { createRequire } from 'node:module';
// The CommonJS module object prom-client itself requires (an ES namespace is read-only).
const perfHooks = createRequire(import.meta.url)('node:perf_hooks') as typeof perfHooksModule;
import { afterAll, expect, it } from 'vitest';
import { startInProcess } from '../helpers/in-process.js';
import { httpGet, metric } from '../helpers/metrics.js';

let monitors = 0;
let observers = 0;
const realMonitor = perfHooks.monitorEventLoopDelay;
const realObserve = perfHooks.PerformanceObserver.prototype.observe;
perfHooks.monitorEventLoopDelay = ((options?: perfHooksModule.EventLoopMonitorOptions) => {
  monitors++;
  return realMonitor(options);
}) as typeof perfHooks.monitorEventLoopDelay;
perfHooks.PerformanceObserver.prototype.observe = function (this: perfHooksModule.PerformanceObserver, options: Parameters<typeof realObserve>[0]) {
  if (JSON.stringify(options).includes('gc')) observers++;
  return realObserve.call(this, options);
};
afterAll(() => {
  perfHooks.monitorEventLoopDelay = realMonitor;
  perfHooks.PerformanceObserver.prototype.observe = realObserve;
});

it('starting and stopping five servers starts at most one event-loop monitor and one GC observer', async () => {
  for (let i = 0; i < 5; i++) {
    const server = await startInProcess();
    // The default metrics are there, on every server.
    const text = (await httpGet(`${server.url}/metrics`)).body;
    expect(metric(text, 'autoprox_nodejs_eventloop_lag_seconds')).toEqual(expect.any(Number));
    expect(text).toMatch(/^# TYPE autoprox_nodejs_gc_duration_seconds histogram$/m);
    await server.close();
  }
  expect(monitors).toBeLessThanOrEqual(1);
  expect(observers).toBeLessThanOrEqual(1);
});
