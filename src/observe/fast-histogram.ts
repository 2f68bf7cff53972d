/**
 * A histogram without labels for a value observed once per heartbeat of every session (RTT):
 * `observe` is a bucket search and three additions, no label hashing and no objects (prom-client's
 * `Histogram.observe` validates and hashes labels on every call: a few per cent of a session's
 * upkeep, measured). It registers with a prom-client registry like any metric and is exposed in
 * the same format (`_bucket{le=...}` cumulative, `_sum`, `_count`).
 */
import type { Registry } from 'prom-client';

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending. */
    readonly buckets: readonly number[],
    registers: Registry[],
  ) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new RangeError(`${name}: buckets must ascend`);
    }
    this.#counts = new Float64Array(buckets.length + 1);
    for (const registry of registers) registry.registerMetric(this as never);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > buckets[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  /** prom-client's metric interface: what a scrape shows. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> } {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += this.#counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: this.buckets[i]! }, value: cumulative });
    }
    cumulative += this.#counts[this.buckets.length]!;
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: cumulative });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.#sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.#count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }
}
