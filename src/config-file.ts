/**
 * `--config FILE`: the same options as the flags, in JSON or YAML, keyed by flag name
 * (`udp-port: 40000`, `no-ipv6: true`, `allow-targets: [10.0.0.0/8]`). Unknown keys and values
 * of the wrong type are refused at start with a message naming the key.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { SERVE_OPTIONS, type RawFlags, type ServeConfig } from './config.js';
import { ConfigError } from './errors.js';
import { closest } from './did-you-mean.js';

export interface ConfigFile {
  path: string;
  values: RawFlags;
}

/** Checks a parsed document and turns it into flag values (strings and booleans). */
export function configValues(document: unknown, path: string): RawFlags {
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigError('config', `config file ${path}: expected a mapping of option names to values`);
  }
  const known = new Map(SERVE_OPTIONS.map((o) => [o.flag, o]));
  const values: RawFlags = {};
  for (const [key, value] of Object.entries(document as Record<string, unknown>)) {
    const spec = known.get(key);
    if (!spec) {
      const hint = closest(key, known.keys());
      throw new ConfigError(key, `config file ${path}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    const where = `config file ${path}: key "${key}"`;
    if (value === null) continue; // null: the default, as if the key were absent
    if (spec.kind === 'bool') {
      if (typeof value !== 'boolean') throw new ConfigError(key, `${where}: expected true or false, got ${JSON.stringify(value)}`);
      values[key] = value;
    } else if (Array.isArray(value) && (spec.kind === 'targets' || spec.kind === 'hostports')) {
      if (!value.every((v) => typeof v === 'string')) throw new ConfigError(key, `${where}: expected a list of ${spec.kind === 'targets' ? 'CIDR' : 'HOST:PORT'} strings`);
      values[key] = value.join(',');
    } else if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) {
      values[key] = String(value);
    } else {
      throw new ConfigError(key, `${where}: expected a ${spec.kind === 'int' ? 'number' : 'string'}, got ${JSON.stringify(value)}`);
    }
  }
  return values;
}

export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `--config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let document: unknown;
  try {
    document = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError('config', `config file ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  return { path, values: configValues(document, path) };
}

/** The effective configuration as a config-file document (flag names), secrets masked. */
export function printableConfig(config: ServeConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of SERVE_OPTIONS) {
    let value: unknown = config[spec.key];
    if (spec.invert) value = !value;
    if (value === null) {
      out[spec.flag] = null;
      continue;
    }
    if (spec.kind === 'secret') value = MASK;
    else if (spec.kind === 'redis') value = maskUrlPassword(value as string);
    else if (spec.kind === 'targets' || spec.kind === 'hostports') value = (value as Array<{ text: string }>).map((r) => r.text);
    out[spec.flag] = value;
  }
  return out;
}

export const MASK = '********';

function maskUrlPassword(text: string): string {
  const url = new URL(text);
  if (url.password) url.password = MASK;
  return url.toString();
}
