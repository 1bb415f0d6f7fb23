import type { ProviderName } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { ImageStore } from '../store/image-store.js';
import type { Provider } from './provider.js';

/**
 * The providers a control plane uses, by name, each made on first use (a home that runs only
 * processes never talks to a Docker Engine). `Providers.of(...)` takes ready-made ones (tests).
 */
export class Providers {
  /** Promises, so two callers at once get the same provider (a second one would never be closed). */
  private readonly made = new Map<ProviderName, Promise<Provider>>();

  private constructor(private readonly make: (name: ProviderName) => Promise<Provider>) {}

  /** The default set: `process` and `docker`, working on `store`. */
  static forStore(store: ImageStore): Providers {
    return new Providers(async (name) => {
      if (name === 'docker') {
        const { DockerProvider } = await import('./docker/docker-provider.js');
        return new DockerProvider(store);
      }
      const { ProcessProvider } = await import('./process/process-provider.js');
      return new ProcessProvider(store);
    });
  }

  /** A set of ready-made providers (each under its own name); any other name is an error. */
  static of(...providers: Provider[]): Providers {
    const set = new Providers(async (name) => {
      throw new ConfigError(`provider '${name}' is not available here (have: ${providers.map((p) => p.name).join(', ')})`);
    });
    for (const provider of providers) set.made.set(provider.name as ProviderName, Promise.resolve(provider));
    return set;
  }

  /** Ready-made providers standing in for names (scenario tests: the fake provider as `process`). */
  static standIn(map: Partial<Record<ProviderName, Provider>>): Providers {
    const set = new Providers(async (name) => {
      throw new ConfigError(`provider '${name}' is not available here (have: ${Object.keys(map).join(', ')})`);
    });
    for (const [name, provider] of Object.entries(map)) set.made.set(name as ProviderName, Promise.resolve(provider!));
    return set;
  }

  /** The provider called `name` (the default for releases recorded before there was a choice: process). */
  get(name: ProviderName | undefined): Promise<Provider> {
    const key = name ?? 'process';
    let provider = this.made.get(key);
    if (!provider) {
      provider = this.make(key);
      this.made.set(key, provider);
      provider.catch(() => this.made.delete(key));
    }
    return provider;
  }

  /** Closes every provider made so far (instances keep running). */
  async close(): Promise<void> {
    for (const provider of this.made.values()) await (await provider.catch(() => undefined))?.close();
    this.made.clear();
  }
}
