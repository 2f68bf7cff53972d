/**
 * One line for a mistyped flag, instead of the parser's hint and the whole usage text:
 * `autoprox serve: unknown flag --udpport (did you mean --udp-port?); `autoprox serve --help` lists the flags`.
 * Pure: arguments in, a name or a line out.
 */
import { parseArgs } from 'node:util';
import { closest } from '../did-you-mean.js';

/** `--name` for long flags, `-n` for one letter; leading dashes in the input are ignored. */
function spelled(flag: string): string {
  const name = flag.replace(/^-+/, '');
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/**
 * The one-line message for an unknown flag of `autoprox <command>`, with the closest known flag
 * (within two edits) as a suggestion. `flag` and `known` may be given with or without dashes.
 */
export function unknownFlagMessage(command: string, flag: string, known: readonly string[]): string {
  const names = known.map((k) => k.replace(/^-+/, ''));
  const hint = closest(flag.replace(/^-+/, ''), names);
  return `autoprox ${command}: unknown flag ${spelled(flag)}${hint ? ` (did you mean ${spelled(hint)}?)` : ''}; \`autoprox ${command} --help\` lists the flags`;
}

/**
 * The first flag in `args` that is not one of `known` (names without dashes), as written
 * (`--udpport`, `-x`), or null. Reads the arguments the way node:util parseArgs does (values
 * after `=` or after a string flag, nothing after `--`), so it agrees with the parse that follows.
 */
export function findUnknownFlag(args: readonly string[], known: Readonly<Record<string, { type: 'string' | 'boolean' }>>): string | null {
  const { tokens } = parseArgs({ args: [...args], options: { ...known }, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'option' && !Object.hasOwn(known, token.name)) return token.rawName;
  }
  return null;
}
