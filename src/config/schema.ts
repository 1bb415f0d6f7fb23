/**
 * The schema of the raw config file (imago.yaml or the default export of imago.config.ts).
 * Unknown keys are errors. Values with a unit (durations, modes, owners) are parsed here;
 * defaults and shorthands are applied once, in normalise.ts.
 */
import { z } from 'zod';
import * as field from './schema-fields.js';
import { serviceName, serviceSchema } from './service-schema.js';
import { evenIfFieldsFailed, has, strictObject } from './schema-helpers.js';

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

/**
 * The whole file. Each top-level key is one section; later sections (services,
 * environments, providers) join this shape and nothing else changes.
 */
export const configSchema = strictObject(
  {
    images: z.record(field.imageName, imageSchema, { error: 'expected an object of image name: image' }).nullish(),
    services: z.record(serviceName, serviceSchema, { error: 'expected an object of service name: service' }).nullish(),
  },
  'an object with "images" and "services" keys',
);

/** The raw config as written: what `defineConfig` accepts and an editor completes. */
export type RawConfig = z.input<typeof configSchema>;

/** The raw config after validation and value parsing, before defaults and shorthands. */
export type ParsedConfig = z.output<typeof configSchema>;

/** One service after validation and value parsing. */
export type ParsedService = z.output<typeof serviceSchema>;

/** One image after validation and value parsing. */
export type ParsedImage = z.output<typeof imageSchema>;
