import { generateTypes } from '@recast/client/generate';
import { describe, expect, it } from 'vitest';
import { systemPerTest } from './system.js';

const { start } = systemPerTest();

describe('@recast/client types', () => {
  it('are what the API documents today (pnpm client:generate writes them again)', async () => {
    const s = await start({ noWorker: true });
    const generated = await generateTypes(s.api.swagger());
    // Outside --update (and always in CI) a difference fails: the committed types are stale.
    await expect(generated).toMatchFileSnapshot('../../packages/client/src/generated/api.ts');
  });
});
