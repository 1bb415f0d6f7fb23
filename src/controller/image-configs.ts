import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import type { ImageStore } from '../store/image-store.js';

/** Image configs by digest, each read from the store once: an image never changes. Shared by a control plane's loops. */
export class ImageConfigs {
  private readonly configs = new Map<Digest, Promise<ImageConfig>>();

  constructor(private readonly store: ImageStore) {}

  /** The config of `digest` (read the first time, remembered after). */
  get(digest: Digest): Promise<ImageConfig> {
    let config = this.configs.get(digest);
    if (!config) {
      config = this.store.config(digest);
      config.catch(() => this.configs.delete(digest));
      this.configs.set(digest, config);
    }
    return config;
  }
}
