/**
 * @module engine
 * One hashing engine for a test file: started before its tests, stopped after them.
 */
import { MatrixEngine } from '@livematrix/spec/engine';
import { afterAll, beforeAll } from 'vitest';

/**
 * Registers beforeAll/afterAll hooks for a shared engine and returns a getter for it.
 *
 * @example
 * const engine = testEngine(); it('...', () => rig(url, engine()));
 */
export function testEngine(workers = 2): () => MatrixEngine {
  let engine: MatrixEngine | undefined;
  beforeAll(async () => {
    engine = new MatrixEngine({ workers });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
  });
  return () => {
    if (!engine) throw new Error('testEngine(): the engine starts in beforeAll; call the getter inside a test');
    return engine;
  };
}
