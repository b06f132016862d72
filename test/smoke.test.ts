import { expect } from 'chai';
import { of, toArray, firstValueFrom } from 'rxjs';
describe('toolchain', () => {
  it('runs TypeScript tests through tsx', async () => {
    expect(await firstValueFrom(of(1, 2).pipe(toArray()))).to.deep.equal([1, 2]);
  });
});
