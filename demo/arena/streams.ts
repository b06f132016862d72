/**
 * The arena's spectator streams, for the relay (`npm run relay`, `npm start`).
 *
 * `match/:id` is one match as spectators see it: the match row, its members
 * with their scores, its battle log, and the board's nodes.
 */
import type { StreamDefinition } from '../../relay/index.ts';
import { tables } from './bindings/index.ts';

export { DbConnection } from './bindings/index.ts';

/** The arena's spectator streams; also what `npm run relay -- --streams demo/arena/streams.ts` reads. */
export const streams: Record<string, StreamDefinition> = {
  'match/:id': {
    params: { id: /^[1-9][0-9]{0,18}$/ },
    tables: ({ id }) => {
      const matchId = BigInt(id);
      return {
        match: { table: tables.arenaMatch, where: (r) => r.id.eq(matchId) },
        members: { table: tables.matchMember, where: (r) => r.matchId.eq(matchId) },
        log: { table: tables.battleLog, where: (r) => r.matchId.eq(matchId) },
        nodes: { table: tables.gameNode },
      };
    },
  },
};

