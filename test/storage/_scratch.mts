import { open, ALICE } from './helpers.ts';
const s = await open();
console.log(s.mode);
await s.outbox.setIdentity(ALICE);
const r = await s.outbox.enqueue('move_node', { id: 5n, x: 1, y: 2 });
console.log(r.entry.id, r.entry.seq, r.entry.args.length);
console.log(s.outbox.decodeArgs(r.entry));
try { await s.outbox.enqueue('move_node', { id: 5, x: 1, y: 2 }); } catch (e) { console.log(String(e)); }
const sub = s.outbox.outbox$.subscribe(st => console.log('state', st.queued, st.pending.length));
await new Promise(r => setTimeout(r, 50));
console.log(await s.outbox.claim(10));
await new Promise(r => setTimeout(r, 50));
sub.unsubscribe();
await s.close();
