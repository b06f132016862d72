/**
 * Case conversions as SpacetimeDB's code generator applies them (Rust
 * `convert_case` 0.6 with its default word boundaries): words split at
 * `_`, `-` and spaces, at lower→upper, at letter↔digit changes and before
 * the last capital of an acronym (`HTTPServer` → `HTTP`, `Server`).
 */

const isLower = (c: string) => c.toLowerCase() === c && c.toUpperCase() !== c;
const isUpper = (c: string) => c.toUpperCase() === c && c.toLowerCase() !== c;
const isDigit = (c: string) => c >= '0' && c <= '9';

/** The words of an identifier. */
export function words(name: string): string[] {
  const out: string[] = [];
  for (const chunk of name.split(/[_\-\s]+/)) {
    if (!chunk) continue;
    const chars = [...chunk];
    let word = '';
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      const prev = chars[i - 1];
      const next = chars[i + 1];
      if (word && prev !== undefined) {
        const boundary =
          (isLower(prev) && isUpper(c)) ||
          (isDigit(prev) && !isDigit(c)) ||
          (!isDigit(prev) && isDigit(c)) ||
          (isUpper(prev) && isUpper(c) && next !== undefined && isLower(next));
        if (boundary) {
          out.push(word);
          word = '';
        }
      }
      word += c;
    }
    if (word) out.push(word);
  }
  return out;
}

const capitalise = (w: string) => {
  const [first = '', ...rest] = [...w];
  return first.toUpperCase() + rest.join('').toLowerCase();
};

export const snakeCase = (name: string) => words(name).map((w) => w.toLowerCase()).join('_');
export const pascalCase = (name: string) => words(name).map(capitalise).join('');
export const camelCase = (name: string) =>
  words(name)
    .map((w, i) => (i === 0 ? w.toLowerCase() : capitalise(w)))
    .join('');
