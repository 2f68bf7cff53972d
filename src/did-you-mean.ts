/**
 * "Did you mean": the known name closest to a mistyped one, by edit distance (Levenshtein).
 * Pure; shared by the config file's unknown keys, the CLI's unknown flags and the unknown
 * AUTOPROX_* environment variables.
 */

/** Edits (insertions, deletions, substitutions) beyond which a name is not suggested. */
export const MAX_SUGGESTION_DISTANCE = 2;

/** Levenshtein distance between two strings, in one row of memory. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/**
 * The known name closest to `word` (the first of equals), or null when none is within
 * `maxDistance` edits (default MAX_SUGGESTION_DISTANCE).
 */
export function closest(word: string, known: Iterable<string>, maxDistance = MAX_SUGGESTION_DISTANCE): string | null {
  let best: string | null = null;
  let bestDistance = maxDistance + 1;
  for (const name of known) {
    const d = editDistance(word, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}
