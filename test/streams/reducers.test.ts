import { expect } from 'chai';
import type { AlgebraicType, ProductType } from 'spacetimedb';
import { ReducerCatalogue } from '../../streams/reducers.ts';
import { InvalidArgsError, OfflineRefusedError, UnknownReducerError } from '../../streams/storageErrors.ts';

const params = (fields: Record<string, AlgebraicType>): ProductType => ({ elements: Object.entries(fields).map(([name, algebraicType]) => ({ name, algebraicType })) });
const reducers = [
  { name: 'send_chat', accessorName: 'sendChat', paramsType: params({ mutationId: { tag: 'String' }, text: { tag: 'String' } }) },
  { name: 'move_node', accessorName: 'moveNode', paramsType: params({ id: { tag: 'U64' }, x: { tag: 'F64' } }) },
  // A numeric column named like the mutation id does not take one: only a string does.
  { name: 'tick', paramsType: params({ mutationId: { tag: 'U64' } }) },
];
let n = 0;
const newId = () => `id-${++n}`;

describe('streams/reducers: the reducer catalogue', () => {
  it('names a reducer by accessor or module name, both ways', () => {
    const c = new ReducerCatalogue(reducers);
    expect(c.canonical('sendChat')).to.equal('send_chat');
    expect(c.canonical('send_chat')).to.equal('send_chat');
    expect(c.canonical('nope')).to.equal('nope');
    expect(c.accessor('send_chat')).to.equal('sendChat');
    expect(c.accessor('tick')).to.equal('tick');
    expect(c.codec('moveNode')?.type).to.equal(reducers[1].paramsType);
  });

  it('the mutation-id rule: a string parameter of that name; it is filled in when left out or empty, kept when given', () => {
    const c = new ReducerCatalogue(reducers);
    expect([c.takesMutationId('sendChat'), c.takesMutationId('move_node'), c.takesMutationId('tick')]).to.deep.equal([true, false, false]);
    expect(c.policy('send_chat').receipts).to.equal(true);
    expect(c.policy('tick').receipts).to.equal(false);
    const filled = c.check('sendChat', { text: 'hi' }, true, newId);
    expect(filled).to.include({ reducer: 'send_chat', takesId: true });
    expect(filled.args).to.deep.equal({ text: 'hi', mutationId: filled.id });
    expect(c.codec('send_chat')!.decode(filled.bytes)).to.deep.equal({ mutationId: filled.id, text: 'hi' });
    expect(c.check('send_chat', { text: 'hi', mutationId: '' }, true, newId).args.mutationId).to.match(/^id-/);
    const given = c.check('send_chat', { text: 'hi', mutationId: 'mine' }, true, newId);
    expect([given.id, given.args.mutationId]).to.deep.equal(['mine', 'mine']);
    const moved = c.check('moveNode', { id: 3n, x: 1 }, true, newId);
    expect(moved.takesId).to.equal(false);
    expect(moved.args).to.deep.equal({ id: 3n, x: 1 });
    // Asked for no id where none is needed, none is generated; one that takes it still gets one.
    let made = 0;
    const counting = () => `made-${++made}`;
    expect(c.check('moveNode', { id: 3n, x: 1 }, true, counting, undefined, false).id).to.equal('');
    expect(made).to.equal(0);
    expect(c.check('sendChat', { text: 'hi' }, true, counting, undefined, false).args.mutationId).to.equal('made-1');
  });

  it('a policy is resolved once and stays as given at construction', () => {
    const given = { priority: 'high' as const };
    const c = new ReducerCatalogue(reducers, { policies: { sendChat: given } });
    const first = c.policy('send_chat');
    given.priority = 'low' as never;
    expect(c.policy('sendChat')).to.equal(first);
    expect(first).to.deep.equal({ offline: 'queue', staleAfterMs: 30_000, receipts: true, priority: 'high' });
    expect(Object.isFrozen(first)).to.equal(true);
  });

  it('refuses bad calls at once with the typed errors', () => {
    const c = new ReducerCatalogue(reducers, { policies: { moveNode: { offline: 'online-only' } } });
    expect(() => c.check('nope', {}, true, newId)).to.throw(UnknownReducerError, 'unknown reducer "nope": it is not in the bindings');
    expect(() => c.check('move_node', { id: 5, x: 1 }, true, newId)).to.throw(InvalidArgsError, 'move_node: args.id must be a bigint u64, got 5');
    expect(() => c.check('moveNode', { id: 5n, x: 1 }, false, newId)).to.throw(OfflineRefusedError, 'move_node is online-only');
    expect(c.check('moveNode', { id: 5n, x: 1 }, true, newId).policy.offline).to.equal('online-only');
  });

  it('policies take either name, once, and only for reducers the bindings have', () => {
    expect(() => new ReducerCatalogue(reducers, { policies: { ghost: {} } })).to.throw(UnknownReducerError, '"ghost"');
    expect(() => new ReducerCatalogue(reducers, { policies: { sendChat: {}, send_chat: {} } })).to.throw(TypeError, "'sendChat' and 'send_chat' name the same reducer");
    expect(new ReducerCatalogue(reducers, { policies: { send_chat: { priority: 'high' } } }).policy('sendChat').priority).to.equal('high');
    const plain = new ReducerCatalogue(reducers);
    const strict = plain.withPolicies({ tick: { offline: 'online-only' } });
    expect([plain.policy('tick').offline, strict.policy('tick').offline]).to.deep.equal(['queue', 'online-only']);
    expect(() => strict.check('tick', { mutationId: 1n }, false, newId)).to.throw(OfflineRefusedError);
    expect(() => plain.withPolicies({ ghost: {} })).to.throw(UnknownReducerError);
  });

  it('throws at construction for parameter types the serializer cannot read (the client then leaves arguments unchecked)', () => {
    expect(() => new ReducerCatalogue([{ name: 'r', paramsType: params({ a: { tag: 'Ref', value: 0 } }) }])).to.throw(/typespace/);
  });
});
