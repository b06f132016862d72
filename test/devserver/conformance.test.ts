/**
 * The conformance runner (`npm run conformance`) itself, run over a
 * checkout-shaped folder built from our own fixtures (SpacetimeDB's
 * repository is not reachable from CI): it finds `modules/*-ts` and
 * `templates/<name>/spacetimedb`, hosts each, and reports a failing module.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));

function runConformance(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'conformance/run.ts', ...args], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('conformance runner', function () {
  this.timeout(150_000);
  let checkout: string;

  before(async () => {
    checkout = await mkdtemp(join(tmpdir(), 'stdb-rx-conformance-'));
    const put = async (dest: string, src: string) => {
      await mkdir(join(checkout, dest, '..'), { recursive: true });
      await copyFile(fixture(src), join(checkout, dest));
    };
    await put('modules/timers-ts/src/index.ts', 'timers.module.ts');
    await put('modules/submodule-ts/src/index.ts', 'submodule/index.module.ts');
    await put('modules/submodule-ts/src/lib.ts', 'submodule/lib.ts');
    await put('templates/basic-ts/spacetimedb/src/index.ts', 'basic.module.ts');
    // Not a TS module folder: ignored.
    await mkdir(join(checkout, 'modules', 'something-rs', 'src'), { recursive: true });
    // A module that does not build: reported, not fatal.
    await mkdir(join(checkout, 'modules', 'broken-ts', 'src'), { recursive: true });
    await writeFile(join(checkout, 'modules', 'broken-ts', 'src', 'index.ts'), "import { nope } from './missing';\nexport default nope;\n");
  });

  after(async () => {
    await rm(checkout, { recursive: true, force: true });
  });

  it('hosts every module, runs the scenarios, and prints the table; a module that fails to load fails the run', async () => {
    const { code, stdout, stderr } = await runConformance(['--spacetimedb', checkout]);
    expect(stdout).to.match(/4 modules, \d+ of \d+ scenarios pass/);
    const row = (name: string) => stdout.split('\n').find((l) => l.startsWith(`| ${name} |`)) ?? '';
    expect(row('modules/timers-ts')).to.match(/\| yes \| (\d+)\/\1 \| — \|/);
    expect(row('modules/submodule-ts')).to.match(/\| yes \| (\d+)\/\1 \| — \| HTTP handler hello, HTTP route GET \/hello → hello \|/);
    expect(row('templates/basic-ts')).to.match(/\| yes \| (\d+)\/\1 \|/);
    expect(row('modules/broken-ts')).to.match(/\| no \| 0\/1 \| load: .*does not build/);
    expect(stdout).not.to.match(/something-rs/);
    expect(stderr).to.match(/conformance: modules\/timers-ts … /);
    expect(code).to.equal(1);
  });

  it('runs only the modules named by --only, and passes when they pass', async () => {
    const { code, stdout, stderr } = await runConformance(['--spacetimedb', checkout, '--only', 'timers', '--verbose']);
    expect(stdout).to.match(/1 modules, (\d+) of \1 scenarios pass/);
    expect(stderr).to.match(/✓ every procedure runs \(zero arguments\): 7 returned, 1 failed in the module, 0 refused HTTP/);
    expect(stderr).to.match(/✓ schedules run through an hour of clock time/);
    expect(stderr).to.match(/✓ every reducer runs \(zero arguments\)/);
    expect(code).to.equal(0);
  });

  it('refuses a folder that is not a SpacetimeDB checkout', async () => {
    const { code, stderr } = await runConformance(['--spacetimedb', join(checkout, 'modules', 'timers-ts')]);
    expect(stderr).to.match(/neither a SpacetimeDB checkout/);
    expect(code).to.equal(2);
  });
});
