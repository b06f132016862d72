/** SpacetimeDB's JSON encoding of typed values, both ways (the HTTP API's arguments and rows). */
import { expect } from 'chai';
import { AlgebraicType, Identity, t } from 'spacetimedb';
import { fromSatsJson, parseJsonKeepingNumbers, SatsJsonError, toSatsJson } from '../../devserver/satsJson.ts';

const Row = t.object('Row', {
  id: t.u64(),
  name: t.string(),
  who: t.identity(),
  nick: t.option(t.string()),
  kind: t.enum('Kind', { Plain: t.unit(), Tagged: t.u8() }),
  bytes: t.byteArray(),
  list: t.array(t.i32()),
});
const ty = Row.algebraicType as AlgebraicType;

describe('SATS JSON', () => {
  const who = Identity.fromString('c2000000000000000000000000000000000000000000000000000000000000ab');
  const value = { id: 2n ** 63n + 5n, name: 'ann', who, nick: undefined, kind: { tag: 'Tagged', value: 7 }, bytes: new Uint8Array([1, 255]), list: [-1, 2] };

  it('writes rows as arrays, keeping every digit of 64-bit integers and identities as 0x strings', () => {
    const text = toSatsJson(ty, value);
    expect(text).to.equal(
      '[9223372036854775813,"ann",["0xc2000000000000000000000000000000000000000000000000000000000000ab"],{"none":[]},{"Tagged":7},"01ff",[-1,2]]',
    );
    expect(toSatsJson(ty, value, [], { named: true })).to.match(/^\{"id":9223372036854775813,"name":"ann",/);
  });

  it('reads what it writes, by position or by name', () => {
    const back = fromSatsJson(ty, parseJsonKeepingNumbers(toSatsJson(ty, value))) as typeof value;
    expect(back.id).to.equal(value.id);
    expect((back.who as Identity).isEqual(who)).to.equal(true);
    expect(back.kind).to.deep.equal({ tag: 'Tagged', value: 7 });
    expect([...back.bytes]).to.deep.equal([1, 255]);
    const named = fromSatsJson(
      ty,
      parseJsonKeepingNumbers(`{"id": 1, "name": "b", "who": "${who.toHexString()}", "nick": {"some": "bee"}, "kind": {"Plain": []}, "bytes": [], "list": []}`),
    ) as typeof value;
    expect(named.nick).to.equal('bee');
    expect(named.kind.tag).to.equal('Plain');
  });

  it('names the failing path and the expectation', () => {
    const bad = (json: string) => {
      try {
        fromSatsJson(ty, parseJsonKeepingNumbers(json));
      } catch (e) {
        expect(e).to.be.instanceOf(SatsJsonError);
        return (e as Error).message;
      }
      return expect.fail(`accepted ${json}`);
    };
    expect(bad('[1, 2, "x", {"none": []}, {"Plain": []}, "", []]')).to.equal('[1]: expected a string, found the number 2');
    expect(bad('[-1, "a", "x", {"none": []}, {"Plain": []}, "", []]')).to.equal('[0]: -1 is out of range for u64');
    expect(bad('[1, "a", "nothex", {"none": []}, {"Plain": []}, "", []]')).to.equal('[2]: expected an identity (64 hex digits), found the string "nothex"');
    expect(bad('[1, "a", "00", {"maybe": 1}, {"Plain": []}, "", []]')).to.match(/^\[2\]|\[3\]/);
    expect(bad('[1, "a"]')).to.equal('expected an array of 7 elements, found an array');
    expect(bad('{"id": 1}')).to.match(/missing field "name"/);
  });
});
