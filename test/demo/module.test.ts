/**
 * The arena module's reducer logic, run in the dev server's real module host
 * (devserver/host): mutation receipts (exactly-once replay), ownership and
 * input validation, the match life cycle, receipt pruning.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { AlgebraicType, BinaryWriter, Identity, Timestamp } from 'spacetimedb';
import { ModuleInstance, type ReducerOutcome } from '../../devserver/host/instance.ts';

const MODULE_PATH = fileURLToPath(new URL('../../demo/arena/module.ts', import.meta.url));

const alice = new Identity(0xa11cen);
const bob = new Identity(0xb0bn);

describe('demo/arena module (in the dev server host)', function () {
  this.timeout(60_000);
  let inst: ModuleInstance;
  let clock: bigint;

  /** Call a reducer (by canonical name) as `sender`; arguments use the module's own field names. */
  const call = (sender: Identity, name: string, args: object = {}): ReducerOutcome => {
    const reducer = inst.reducer(name);
    if (!reducer) throw new Error(`no reducer ${name}`);
    const writer = new BinaryWriter(64);
    AlgebraicType.makeSerializer(reducer.paramsType, inst.description.typespace as any)(writer, args);
    clock += 1_000_000n;
    return inst.callReducer(reducer, { sender, connectionId: null, timestamp: clock, args: writer.getBuffer().slice() });
  };
  const ok = (outcome: ReducerOutcome) => {
    expect(outcome, JSON.stringify(outcome)).to.include({ status: 'committed' });
    return outcome;
  };
  const rejected = (outcome: ReducerOutcome, message: RegExp) => {
    expect(outcome).to.include({ status: 'failed', kind: 'user' });
    expect((outcome as { message: string }).message).to.match(message);
  };
  /** Current rows of a table (by canonical name), as the module sees them. */
  const rows = (table: string): Record<string, any>[] =>
    inst.datastore.scanTable(inst.datastore.tableIdFromName(table)).map(r => r.value as Record<string, any>);
  const connect = (who: Identity) => ok(call(who, 'client_connected'));

  beforeEach(async () => {
    clock = 1_700_000_000_000_000n;
    inst = await ModuleInstance.load(MODULE_PATH, { databaseIdentity: new Identity(7n) });
    ok(call(new Identity(7n), 'init'));
  });

  describe('players', () => {
    it('creates a player on connect and tracks online and last seen', () => {
      connect(alice);
      let [p] = rows('player');
      expect(p.identity.isEqual(alice)).to.equal(true);
      expect(p.online).to.equal(true);
      expect(p.name).to.match(/^anon-/);
      ok(call(alice, 'client_disconnected'));
      [p] = rows('player');
      expect(p.online).to.equal(false);
      expect((p.lastSeen as Timestamp).microsSinceUnixEpoch).to.equal(clock);
    });

    it('sets a trimmed name and rejects empty or too long names', () => {
      connect(alice);
      ok(call(alice, 'set_name', { mutationId: 'n1', name: '  Alice  ' }));
      expect(rows('player')[0].name).to.equal('Alice');
      rejected(call(alice, 'set_name', { mutationId: 'n2', name: '   ' }), /name must not be empty/);
      rejected(call(alice, 'set_name', { mutationId: 'n3', name: 'x'.repeat(33) }), /too long/);
      expect(rows('player')[0].name).to.equal('Alice');
    });
  });

  describe('mutation receipts', () => {
    it('applies a mutation once and skips its replay successfully, without effect', () => {
      connect(alice);
      ok(call(alice, 'send_chat', { mutationId: 'm-1', text: 'hello' }));
      ok(call(alice, 'send_chat', { mutationId: 'm-1', text: 'hello' }));
      expect(rows('chat_message')).to.have.length(1);
      const receipts = rows('mutation_receipt');
      expect(receipts).to.have.length(1);
      expect(receipts[0]).to.include({ mutationId: 'm-1', reducer: 'send_chat' });
      expect(receipts[0].sender.isEqual(alice)).to.equal(true);
    });

    it('keeps receipts per sender: the same id from another player is a new mutation', () => {
      connect(alice);
      connect(bob);
      ok(call(alice, 'send_chat', { mutationId: 'same', text: 'from alice' }));
      ok(call(bob, 'send_chat', { mutationId: 'same', text: 'from bob' }));
      expect(rows('chat_message').map(m => m.text).sort()).to.deep.equal(['from alice', 'from bob']);
      expect(rows('mutation_receipt')).to.have.length(2);
    });

    it('records no receipt for a rejected mutation, so its replay is judged again', () => {
      connect(alice);
      rejected(call(alice, 'send_chat', { mutationId: 'm-bad', text: '' }), /message must not be empty/);
      expect(rows('mutation_receipt')).to.have.length(0);
      rejected(call(alice, 'send_chat', { mutationId: 'm-bad', text: '' }), /message must not be empty/);
    });

    it('refuses a mutation id already used by another reducer', () => {
      connect(alice);
      ok(call(alice, 'send_chat', { mutationId: 'dup', text: 'hi' }));
      rejected(call(alice, 'set_name', { mutationId: 'dup', name: 'Al' }), /already used by reducer send_chat/);
    });

    it('rejects empty mutation ids', () => {
      connect(alice);
      rejected(call(alice, 'send_chat', { mutationId: '', text: 'hi' }), /mutation id must not be empty/);
    });

    it("prunes only the caller's receipts, by age and by count", () => {
      connect(alice);
      connect(bob);
      for (let i = 1; i <= 5; i++) ok(call(alice, 'send_chat', { mutationId: `a${i}`, text: `a${i}` }));
      ok(call(bob, 'send_chat', { mutationId: 'b1', text: 'b1' }));
      const third = rows('mutation_receipt').find(r => r.mutationId === 'a3')!;

      ok(call(alice, 'prune_receipts', { olderThan: third.appliedAt, keepNewest: undefined }));
      expect(rows('mutation_receipt').map(r => r.mutationId).sort()).to.deep.equal(['a3', 'a4', 'a5', 'b1']);

      ok(call(alice, 'prune_receipts', { olderThan: undefined, keepNewest: 1 }));
      expect(rows('mutation_receipt').map(r => r.mutationId).sort()).to.deep.equal(['a5', 'b1']);

      rejected(call(alice, 'prune_receipts', { olderThan: undefined, keepNewest: undefined }), /olderThan, keepNewest/);
    });
  });

  describe('game nodes', () => {
    const node = (id: bigint) => rows('game_node').find(n => n.id === id);

    it('creates, moves and updates owned nodes, bumping the version on each change', () => {
      connect(alice);
      ok(call(alice, 'create_node', { mutationId: 'c1', parent: 0n, x: 1, y: 2, data: '{"hp":10}' }));
      const [created] = rows('game_node');
      expect(created).to.include({ parent: 0n, x: 1, y: 2, data: '{"hp":10}', version: 1 });
      expect(created.owner.isEqual(alice)).to.equal(true);
      ok(call(alice, 'move_node', { mutationId: 'mv1', id: created.id, x: -3.5, y: 4 }));
      expect(node(created.id)).to.include({ x: -3.5, y: 4, version: 2 });
      ok(call(alice, 'update_node_data', { mutationId: 'u1', id: created.id, data: '[1,2]' }));
      expect(node(created.id)).to.include({ data: '[1,2]', version: 3 });
      ok(call(alice, 'move_node', { mutationId: 'mv1', id: created.id, x: 100, y: 100 })); // replay: no effect
      expect(node(created.id)).to.include({ x: -3.5, y: 4, version: 3 });
    });

    it("refuses to touch another player's node", () => {
      connect(alice);
      connect(bob);
      ok(call(alice, 'create_node', { mutationId: 'c1', parent: 0n, x: 0, y: 0, data: '{}' }));
      const [created] = rows('game_node');
      rejected(call(bob, 'move_node', { mutationId: 'b1', id: created.id, x: 1, y: 1 }), /cannot move node .*you do not own it/);
      rejected(call(bob, 'delete_node', { mutationId: 'b2', id: created.id }), /you do not own it/);
      rejected(call(bob, 'create_node', { mutationId: 'b3', parent: created.id, x: 0, y: 0, data: '{}' }), /cannot attach to/);
      expect(node(created.id)).to.include({ x: 0, y: 0, version: 1 });
    });

    it('validates coordinates, JSON data and node existence', () => {
      connect(alice);
      rejected(call(alice, 'create_node', { mutationId: 'v1', parent: 0n, x: NaN, y: 0, data: '{}' }), /x must be a finite number/);
      rejected(call(alice, 'create_node', { mutationId: 'v2', parent: 0n, x: 0, y: 2e6, data: '{}' }), /y is outside the arena/);
      rejected(call(alice, 'create_node', { mutationId: 'v3', parent: 0n, x: 0, y: 0, data: '{oops' }), /not valid JSON/);
      rejected(call(alice, 'move_node', { mutationId: 'v4', id: 99n, x: 0, y: 0 }), /node 99 does not exist/);
      expect(rows('game_node')).to.have.length(0);
    });

    it('reparents without cycles and deletes whole subtrees', () => {
      connect(alice);
      ok(call(alice, 'create_node', { mutationId: 'r', parent: 0n, x: 0, y: 0, data: '{}' }));
      const root = rows('game_node')[0].id as bigint;
      ok(call(alice, 'create_node', { mutationId: 'c', parent: root, x: 0, y: 0, data: '{}' }));
      const child = rows('game_node').find(n => n.parent === root)!.id as bigint;
      ok(call(alice, 'create_node', { mutationId: 'g', parent: child, x: 0, y: 0, data: '{}' }));
      ok(call(alice, 'create_node', { mutationId: 'o', parent: 0n, x: 0, y: 0, data: '{}' }));
      rejected(call(alice, 'reparent_node', { mutationId: 'cy', id: root, parent: child }), /cycle/);
      ok(call(alice, 'delete_node', { mutationId: 'd', id: root }));
      expect(rows('game_node')).to.have.length(1);
    });
  });

  describe('matches', () => {
    const match = () => rows('arena_match')[0];

    it('goes lobby → battle → done, with joins only in the lobby', () => {
      connect(alice);
      connect(bob);
      ok(call(alice, 'create_match', { mutationId: 'cm', name: 'duel', maxPlayers: 2 }));
      const id = match().id as bigint;
      expect(match().state.tag).to.equal('Lobby');
      rejected(call(bob, 'start_match', { mutationId: 's0', matchId: id }), /only the host/);
      ok(call(bob, 'join_match', { mutationId: 'j', matchId: id }));
      rejected(call(bob, 'join_match', { mutationId: 'j2', matchId: id }), /already joined/);
      ok(call(alice, 'start_match', { mutationId: 's', matchId: id }));
      expect(match().state.tag).to.equal('Battle');
      rejected(call(bob, 'join_match', { mutationId: 'j3', matchId: id }), /not in the lobby/);

      ok(call(bob, 'record_battle_event', { mutationId: 'e1', matchId: id, action: 'hit', detail: '{"dmg":5}', scoreDelta: 5 }));
      ok(call(alice, 'record_battle_event', { mutationId: 'e2', matchId: id, action: 'heal', detail: '{}', scoreDelta: 1 }));
      expect(rows('battle_log').map(e => [e.seq, e.action]).sort()).to.deep.equal([
        [1, 'hit'],
        [2, 'heal'],
      ]);
      ok(call(alice, 'end_match', { mutationId: 'end', matchId: id, winner: undefined }));
      expect(match().state.tag).to.equal('Done');
      expect(match().winner.isEqual(bob)).to.equal(true);
      rejected(call(alice, 'record_battle_event', { mutationId: 'e3', matchId: id, action: 'x', detail: '{}', scoreDelta: 0 }), /not in battle/);
    });

    it('refuses full matches and unknown matches', () => {
      connect(alice);
      connect(bob);
      ok(call(alice, 'create_match', { mutationId: 'cm', name: 'solo', maxPlayers: 1 }));
      rejected(call(bob, 'join_match', { mutationId: 'j', matchId: match().id }), /is full/);
      rejected(call(bob, 'join_match', { mutationId: 'j2', matchId: 404n }), /match 404 does not exist/);
      rejected(call(alice, 'create_match', { mutationId: 'cm2', name: 'big', maxPlayers: 17 }), /max players/);
    });

    it('hands the host role on when the host leaves the lobby, and ends an empty match', () => {
      connect(alice);
      connect(bob);
      ok(call(alice, 'create_match', { mutationId: 'cm', name: 'lobby', maxPlayers: 4 }));
      const id = match().id as bigint;
      ok(call(bob, 'join_match', { mutationId: 'j', matchId: id }));
      ok(call(alice, 'leave_match', { mutationId: 'l1', matchId: id }));
      expect(match().host.isEqual(bob)).to.equal(true);
      ok(call(bob, 'leave_match', { mutationId: 'l2', matchId: id }));
      expect(match().state.tag).to.equal('Done');
      expect(rows('match_member')).to.have.length(0);
    });
  });

  describe('telemetry', () => {
    it('stores a batch of events in the private telemetry table', () => {
      connect(alice);
      const events = [
        { kind: 'frame_ms', value: 16.6, clientTime: new Timestamp(5n) },
        { kind: 'rtt_ms', value: 42, clientTime: new Timestamp(6n) },
      ];
      ok(call(alice, 'report_telemetry', { mutationId: 't1', events }));
      expect(rows('telemetry').map(e => [e.kind, e.value]).sort()).to.deep.equal([
        ['frame_ms', 16.6],
        ['rtt_ms', 42],
      ]);
      rejected(call(alice, 'report_telemetry', { mutationId: 't2', events: [] }), /at least one event/);
    });
  });
});
