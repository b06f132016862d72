/** What the page server tells the page at `/config.json`. */
export interface PageConfig {
  /** SpacetimeDB (or dev server) WebSocket/HTTP base, e.g. `ws://127.0.0.1:3000`. */
  readonly uri: string;
  readonly database: string;
  /** Whether `/_dev/*` on the page's own origin reaches the dev server's fault controls. */
  readonly admin: boolean;
  /** Heartbeat of the sync client (ms). */
  readonly heartbeat: { readonly interval: number; readonly timeout: number };
  /** Reconnect backoff (ms). */
  readonly retry: { readonly initialInterval: number; readonly maxInterval: number };
  /** Time allowed for one connection attempt (ms). */
  readonly connectTimeout: number;
}

/** Defaults chosen so that a person watching the demo sees the layer heal within seconds. */
export const DEFAULT_PAGE_TIMINGS: Pick<PageConfig, 'heartbeat' | 'retry' | 'connectTimeout'> = {
  heartbeat: { interval: 1500, timeout: 1000 },
  retry: { initialInterval: 500, maxInterval: 8000 },
  connectTimeout: 5000,
};
