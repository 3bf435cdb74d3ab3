#!/usr/bin/env node
// Runs the TypeScript entry through tsx, like the other apps (`tsx src/main.ts`): no build step.
// tsx is resolved from this package, so `recast` works from any directory.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
