/**
 * A named, bounded map whose entries expire: what a Worker instance keeps between requests
 * (routes, route tokens, rate-limit leases, derived keys). Full, it forgets its least
 * recently used entry; an entry older than its lifetime is not returned. Pure bookkeeping in
 * memory: each Worker instance has its own, constructed where the instance starts.
 */
export interface CacheLimits {
  /** At most this many entries. */
  entries: number;
  /** How long an entry is returned after it was set (Infinity: as long as the instance lives). */
  lifetimeMs: number;
}

export class Cache<K, V> {
  readonly #entries = new Map<K, { value: V; until: number }>();

  constructor(
    readonly name: string,
    readonly limits: CacheLimits,
  ) {
    if (!(limits.entries > 0)) throw new Error(`cache ${name}: entries must be positive`);
    if (!(limits.lifetimeMs > 0)) throw new Error(`cache ${name}: lifetime must be positive`);
  }

  /** The live entry for `key`, now the most recently used; undefined when absent or expired. */
  get(key: K, now = Date.now()): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.until <= now) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  has(key: K, now = Date.now()): boolean {
    return this.get(key, now) !== undefined;
  }

  /** Sets `key`, for the cache's lifetime or a shorter one of its own; the least recently used entry goes when full. */
  set(key: K, value: V, options: { now?: number; lifetimeMs?: number } = {}): V {
    const now = options.now ?? Date.now();
    const lifetime = Math.min(options.lifetimeMs ?? this.limits.lifetimeMs, this.limits.lifetimeMs);
    this.#entries.delete(key);
    if (this.#entries.size >= this.limits.entries) this.#entries.delete(this.#entries.keys().next().value as K);
    this.#entries.set(key, { value, until: now + lifetime });
    return value;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  /** Drops every entry `matches` picks. */
  deleteWhere(matches: (value: V, key: K) => boolean): void {
    for (const [key, entry] of this.#entries) if (matches(entry.value, key)) this.#entries.delete(key);
  }

  /** Takes every live entry out, oldest first, and empties the cache. */
  drain(now = Date.now()): Array<[K, V]> {
    const live = [...this.#entries].filter(([, e]) => e.until > now).map(([k, e]): [K, V] => [k, e.value]);
    this.#entries.clear();
    return live;
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }
}
