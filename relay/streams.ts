/**
 * Stream definitions: which names a relay serves and the queries behind each.
 *
 * A definition's pattern is a path of literal segments and `:param`
 * segments (`match/:id`). A spectator's stream name matches when it has the
 * same number of segments, the literals are equal and every parameter value
 * passes its check. The relay never builds queries from anything else: a
 * spectator picks a name, the definition picks the SQL.
 *
 * @module
 */
import type { QuerySource } from '../streams/query.ts';

/** One table of a stream: a table reference from the bindings and an optional filter. */
export interface StreamTable {
  /** Table reference from the bindings (`tables.arenaMatch`). */
  table: QuerySource;
  /** Filter with the SDK's query builder, e.g. `(r) => r.matchId.eq(7n)`. @default every row */
  where?: (row: any) => any;
}

/** What a stream serves, for given parameter values. */
export interface StreamDefinition {
  /**
   * The stream's tables by the name spectators see (their `table$(name)`),
   * built from the parameter values of the spectator's stream name.
   */
  tables: (params: Readonly<Record<string, string>>) => Record<string, StreamTable>;
  /**
   * Per-parameter check of the values; a name failing one is an unknown stream.
   * @default every parameter must match /^[A-Za-z0-9_-]{1,64}$/
   */
  params?: Record<string, RegExp | ((value: string) => boolean)>;
  /**
   * Broadcast delay in ms: patches are held back this long before any
   * spectator sees them (against live ghosting); snapshots show the delayed state too.
   * @default the relay's `delayMs`
   */
  delayMs?: number;
}

/** A resolved stream name. */
export interface MatchedStream {
  readonly name: string;
  readonly pattern: string;
  readonly params: Readonly<Record<string, string>>;
  readonly definition: StreamDefinition;
}

const DEFAULT_PARAM = /^[A-Za-z0-9_-]{1,64}$/;
const SEGMENT = /^(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9_.-]+)$/;

/** The stream patterns of a relay, compiled once. */
export class StreamCatalog {
  readonly #entries: { pattern: string; segments: string[]; definition: StreamDefinition }[] = [];

  /** @throws {TypeError} For a malformed pattern or definition. */
  constructor(streams: Record<string, StreamDefinition>) {
    if (streams === null || typeof streams !== 'object') throw new TypeError('createRelay: `streams` must be an object of pattern → definition.');
    for (const [pattern, definition] of Object.entries(streams)) {
      const segments = pattern.split('/');
      if (segments.some((s) => !SEGMENT.test(s))) {
        throw new TypeError(`createRelay: stream pattern ${JSON.stringify(pattern)} must be segments of [A-Za-z0-9_.-] or :param, separated by '/'.`);
      }
      if (typeof definition?.tables !== 'function') throw new TypeError(`createRelay: stream ${pattern}: \`tables\` must be a function of the parameters.`);
      if (definition.delayMs !== undefined && !(Number.isFinite(definition.delayMs) && definition.delayMs >= 0)) {
        throw new TypeError(`createRelay: stream ${pattern}: delayMs must be a finite number >= 0.`);
      }
      this.#entries.push({ pattern, segments, definition });
    }
    if (this.#entries.length === 0) throw new TypeError('createRelay: configure at least one stream.');
  }

  get patterns(): string[] {
    return this.#entries.map((e) => e.pattern);
  }

  /** The definition serving `name`, or `undefined`. */
  match(name: string): MatchedStream | undefined {
    const parts = name.split('/');
    for (const { pattern, segments, definition } of this.#entries) {
      if (segments.length !== parts.length) continue;
      const params: Record<string, string> = Object.create(null);
      let ok = true;
      for (let i = 0; i < segments.length && ok; i++) {
        const seg = segments[i];
        if (seg.startsWith(':')) {
          const key = seg.slice(1);
          const check = definition.params?.[key] ?? DEFAULT_PARAM;
          ok = typeof check === 'function' ? check(parts[i]) : check.test(parts[i]);
          params[key] = parts[i];
        } else {
          ok = seg === parts[i];
        }
      }
      if (ok) return { name, pattern, params, definition };
    }
    return undefined;
  }
}
