import type { CopyStep, ImageSpec, RunStep } from '../../src/config/types.js';

/** An image spec with defaults, for tests that skip the config file. */
export function imageSpec(overrides: Partial<ImageSpec> & { context: string }): ImageSpec {
  return {
    name: 'test',
    from: { kind: 'scratch' },
    steps: [],
    env: [],
    workdir: undefined,
    entrypoint: undefined,
    cmd: undefined,
    user: undefined,
    port: undefined,
    health: undefined,
    labels: {},
    ...overrides,
  };
}

/** A copy step with defaults. */
export function copy(src: string, dest: string, more: Partial<CopyStep> = {}): CopyStep {
  return { kind: 'copy', key: 'copy', src, dest, exclude: [], mode: undefined, owner: { uid: 0, gid: 0 }, ...more };
}

/** A run step. */
export function run(command: string | string[]): RunStep {
  return { kind: 'run', key: 'run', command };
}
