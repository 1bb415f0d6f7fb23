import { ConfigError } from '../../errors.js';
import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';
import { blueGreen } from './blue-green.js';
import { rolling } from './rolling.js';

/** A strategy: from where a rollout stands, the next steps ([] when it is done). Pure. */
export type Strategy = (state: RolloutState, limits: RolloutLimits) => RolloutStep[];

/** The strategies by name. */
export const STRATEGIES = { rolling, 'blue-green': blueGreen } as const satisfies Record<string, Strategy>;

/** The names a config may use. */
export type StrategyName = keyof typeof STRATEGIES;

/** The strategy called `name`; an unknown name fails with the name and the known ones. */
export function strategyFor(name: string): Strategy {
  const strategy = (STRATEGIES as Record<string, Strategy>)[name];
  if (!strategy) throw new ConfigError(`unknown strategy: ${name} (expected one of ${Object.keys(STRATEGIES).join(', ')})`);
  return strategy;
}
