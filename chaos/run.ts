/**
 * `npm run chaos -- --seed <n> --clients <k> --seconds <s>`: the chaos run
 * of project issue 9 (engine: test/chaos/engine.ts). Prints progress, a
 * report and, as its last line, the summary:
 *
 *   chaos: seed=<n> clients=<k> mutations=<m> applied=<a> rejected=<r> lost=<l> duplicated=<d> diverged=<v> faults=<f> handles: confirmed=<c> confirmedNotOnServer=<x> rejected=<j> rejectedOnServer=<y> unknown=<u> closed=<z> peakLiveHeapMb=<h>
 *
 * Exits 1 when anything was lost, duplicated or diverged, when a handle said
 * confirmed for a call not on the server or rejected for one that is (or the
 * run found another problem: a wrong rejection reason, an unhandled error,
 * the peak live heap — measured after full collections — over its bound,
 * 256 MB unless `--max-heap-mb` says otherwise), 2 on bad flags.
 */
import { parseArgs } from 'node:util';
import { runChaos } from '../test/chaos/engine.ts';

const usage = 'usage: npm run chaos -- --seed <n> --clients <k> --seconds <s> [--rate <per client per s>] [--fault-gap <ms>] [--max-heap-mb <mb>] [--trace] [--quiet]';

function number(flag: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new Error(`--${flag} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

let opts;
try {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      clients: { type: 'string' },
      seconds: { type: 'string' },
      rate: { type: 'string' },
      'fault-gap': { type: 'string' },
      'max-heap-mb': { type: 'string' },
      quiet: { type: 'boolean' },
      trace: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  opts = {
    seed: number('seed', values.seed, 1),
    clients: number('clients', values.clients, 3),
    seconds: number('seconds', values.seconds, 10),
    rate: values.rate === undefined ? undefined : number('rate', values.rate),
    meanFaultGapMs: values['fault-gap'] === undefined ? undefined : number('fault-gap', values['fault-gap']),
    maxHeapMb: values['max-heap-mb'] === undefined ? undefined : number('max-heap-mb', values['max-heap-mb']),
    trace: values.trace,
    log: values.quiet ? undefined : (line: string) => console.log(line),
  };
} catch (e) {
  console.error(`chaos: ${(e as Error).message}\n${usage}`);
  process.exit(2);
}

try {
  const result = await runChaos(opts);
  for (const line of result.report) console.log(line);
  process.exitCode = result.failed ? 1 : 0;
} catch (e) {
  console.error(`chaos: the run itself failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
}
