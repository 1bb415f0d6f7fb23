/**
 * The schema of the raw config file (imago.yaml or the default export of imago.config.ts).
 * Unknown keys are errors. Values with a unit (durations, modes, owners) are parsed here;
 * defaults and shorthands are applied once, in normalise.ts.
 */
import { z } from 'zod';
import * as field from './schema-fields.js';
import { ENVIRONMENT_NAME, isEnvironmentName, OVERRIDABLE_KEYS } from './environments.js';
import { serviceName, serviceSchema } from './service-schema.js';
import { volumeKey } from './volume-key.js';
import { checkedString, evenIfFieldsFailed, has, strictObject } from './schema-helpers.js';

/** One image: where it starts, what is copied and run, and how it runs. */
export const imageSchema = strictObject(
  {
    context: z.string({ error: 'expected a folder path' }).min(1, { error: 'expected a folder path' }).optional(),
    from: field.from.optional(),
    copy: z.array(field.copy, { error: 'expected an array of copies' }).optional(),
    run: z.array(field.command, { error: 'expected an array of commands' }).optional(),
    steps: z.array(field.step, { error: 'expected an array of steps' }).optional(),
    env: field.env.optional(),
    workdir: field.absolutePath.optional(),
    entrypoint: field.command.optional(),
    cmd: field.command.optional(),
    user: field.user.optional(),
    port: field.port.optional(),
    health: field.health.optional(),
    labels: field.labels.optional(),
  },
  'an object describing an image',
).superRefine((image, ctx) => {
  if (has(image, 'steps') && (has(image, 'copy') || has(image, 'run'))) {
    ctx.addIssue({ code: 'custom', path: ['steps'], message: 'cannot be combined with copy or run: use steps alone, or copy and run' });
  }
}, evenIfFieldsFailed);

/** An environment's name, as a key of `environments` or the value of `defaultEnvironment`. */
const environmentName = checkedString(ENVIRONMENT_NAME, isEnvironmentName);

/** What an environment changes of one service: any of OVERRIDABLE_KEYS, never the image. */
const serviceOverride = strictObject(
  Object.fromEntries(OVERRIDABLE_KEYS.map((key) => [key, serviceSchema.shape[key]])) as { [K in (typeof OVERRIDABLE_KEYS)[number]]: (typeof serviceSchema.shape)[K] },
  `an object of what this environment changes (${OVERRIDABLE_KEYS.join(', ')}); the image, its port, volumes and protocol are the same everywhere`,
);

/** One environment: its services' overrides, how long a release must have been live where it is promoted from, and whose signatures it requires. */
const environmentSchema = strictObject(
  {
    minSoak: field.soak.optional(),
    requireSignature: strictObject(
      { keys: z.array(checkedString('a public key file like "keys/release.pub"', (v) => v.trim() !== '' && !v.includes('\0')), { error: 'expected a list of public key files' }).min(1, { error: 'expected at least one public key file' }) },
      'an object like { keys: [keys/release.pub] }',
    ).optional(),
    services: z.record(serviceName, serviceOverride, { error: 'expected an object of service name: what this environment changes' }).nullish(),
  },
  'an object like { minSoak: 1h, requireSignature: { keys: [release.pub] }, services: { web: { replicas: 3 } } }',
);

/**
 * The whole file. Each top-level key is one section; later sections (providers) join this
 * shape and nothing else changes.
 */
export const configSchema = strictObject(
  {
    images: z.record(field.imageName, imageSchema, { error: 'expected an object of image name: image' }).nullish(),
    services: z.record(serviceName, serviceSchema, { error: 'expected an object of service name: service' }).nullish(),
    environments: z.record(environmentName, environmentSchema.nullable(), { error: 'expected an object of environment name: environment' }).nullish(),
    defaultEnvironment: environmentName.optional(),
  },
  'an object with "images", "services", "environments" and "defaultEnvironment" keys',
).superRefine((config, ctx) => {
  const environments = config.environments ?? {};
  const names = Object.keys(environments);
  if (config.defaultEnvironment !== undefined && !names.includes(config.defaultEnvironment)) {
    const known = names.length > 0 ? `one of ${names.join(', ')}` : 'an environment declared under environments (there is none)';
    ctx.addIssue({ code: 'custom', path: ['defaultEnvironment'], message: `expected ${known}, got "${config.defaultEnvironment}"`, input: config.defaultEnvironment });
  }
  const services = Object.keys(config.services ?? {});
  // Two services' volumes that would make one Docker volume: the second would mount the first's data.
  const holders = new Map<string, [string, string]>();
  for (const [service, spec] of Object.entries(config.services ?? {})) {
    for (const volume of Object.keys(spec?.volumes ?? {})) {
      const key = volumeKey(service, volume);
      const other = holders.get(key);
      if (other) {
        const message = `this volume and volume "${other[1]}" of service "${other[0]}" would share one Docker volume, imago-<scope>-${key} (its name joins service and volume with "-"): rename one of them`;
        ctx.addIssue({ code: 'custom', path: ['services', service, 'volumes', volume], message, input: volume });
      } else holders.set(key, [service, volume]);
    }
  }
  for (const [env, environment] of Object.entries(environments)) {
    for (const name of Object.keys(environment?.services ?? {})) {
      if (!services.includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['environments', env, 'services', name], message: `no service "${name}" under services (expected one of ${services.join(', ') || '(none)'})`, input: name });
      }
    }
  }
}, evenIfFieldsFailed);

/** The raw config as written: what `defineConfig` accepts and an editor completes. */
export type RawConfig = z.input<typeof configSchema>;

/** The raw config after validation and value parsing, before defaults and shorthands. */
export type ParsedConfig = z.output<typeof configSchema>;

/** One service after validation and value parsing. */
export type ParsedService = z.output<typeof serviceSchema>;

/** One image after validation and value parsing. */
export type ParsedImage = z.output<typeof imageSchema>;
