import { z } from 'zod';
import type { ListenSpec } from '../engine/engine.js';

/** What a built-in router process is started with (`router.json` in its folder). */
export interface BuiltinConfig {
  service: string;
  listen: ListenSpec;
}

/** The control socket's file name in a router's folder. */
export const CONTROL_SOCKET = 'control.sock';
/** The config file's name. */
export const CONFIG_FILE = 'router.json';
/** The pid file's name, written once the router serves. */
export const PID_FILE = 'router.pid';
/** Where the process's own output goes. */
export const LOG_FILE = 'router.log';

/** Exit codes a router process that could not start ends with, so its starter can say why. */
export const EXIT = { inUse: 3, badInput: 4, failed: 1 } as const;

export const targetSchema = z.object({
  id: z.string().min(1).max(200),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  release: z.number().int().optional(),
});

export const weightsSchema = z.object({ weights: z.record(z.string(), z.number().finite().min(0)).optional() });

export const configSchema = z.object({
  service: z.string().min(1),
  listen: z.object({
    host: z.string(),
    port: z.number().int().min(0).max(65535),
    protocol: z.enum(['http', 'tcp']),
    tls: z.object({ cert: z.string(), key: z.string() }).optional(),
  }),
});

/** What `GET /v1/health` answers: enough for a control plane to know it adopts the right router. */
export interface BuiltinHealth {
  pid: number;
  service: string;
  listen: { host: string; port: number; protocol: 'http' | 'tcp'; tls: boolean };
  version: string;
  startedAt: number;
}
