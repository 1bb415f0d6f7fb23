/**
 * What the deploy benches share: examples/hello's image and service as a normalised config,
 * a version bump of the image, and running a deploy under constant wrk load.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { ImageSpec, ImagoConfig } from '../../src/config/types.js';
import { startWrk, type WrkResult } from './wrk.js';

/** wrk runs this long at most during a deploy; it is stopped (SIGINT) once the deploy is done. */
export const LOAD_MAX_SECONDS = 300;
/** Load before and after each deploy, inside the wrk window. */
export const LOAD_MARGIN_MS = 1000;

/**
 * examples/hello's image (its run step left out: the app does not need /var/lib/hello) and one
 * service `hello` of it with the given raw service settings (as in imago.yaml).
 */
export function helloConfig(helloDir: string, service: Record<string, unknown>): ImagoConfig {
  return normaliseConfig(
    {
      images: {
        hello: {
          context: helloDir,
          from: { host: ['node', 'busybox'] },
          copy: [{ src: 'app/', dest: '/app', exclude: ['*.test.js'] }],
          env: { APP_VERSION: '1', NODE_ENV: 'production' },
          workdir: '/app',
          entrypoint: ['/usr/bin/node'],
          cmd: ['server.js'],
          user: '1000:1000',
        },
      },
      services: { hello: { image: 'hello', ...service } },
    },
    join(helloDir, 'imago.yaml'),
  );
}

/** examples/hello's image with another APP_VERSION. */
export function withVersion(base: ImageSpec, version: string): ImageSpec {
  return { ...base, env: base.env.map(([k, v]) => [k, k === 'APP_VERSION' ? version : v] as [string, string]) };
}

/** A failed-requests cell: wrk's non-2xx and socket errors. */
export function failures(r: WrkResult): string {
  const s = r.socketErrors;
  return `${r.non2xx} non-2xx; socket errors: connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}`;
}

/** wrk's failed requests as one number: non-2xx plus every kind of socket error. */
export function failedCount(r: WrkResult): number {
  const s = r.socketErrors;
  return r.non2xx + s.connect + s.read + s.write + s.timeout;
}

/** Runs `deploy` under wrk load through `url`: wrk starts LOAD_MARGIN_MS before and stops LOAD_MARGIN_MS after. */
export async function underLoad<T>(url: string, deploy: () => Promise<T>): Promise<{ ms: number; value: T; wrk: WrkResult }> {
  const wrk = startWrk(`${url}/`, LOAD_MAX_SECONDS);
  await sleep(LOAD_MARGIN_MS);
  const t0 = performance.now();
  let value: T;
  try {
    value = await deploy();
  } catch (error) {
    await wrk.stop().catch(() => undefined);
    throw error;
  }
  const ms = performance.now() - t0;
  await sleep(LOAD_MARGIN_MS);
  if (wrk.exitedEarly()) throw new Error(`wrk's ${LOAD_MAX_SECONDS} s ended before the deploy did`);
  return { ms, value, wrk: await wrk.stop() };
}
