// Under moduleResolution nodenext the SDK's own typings do not resolve (its
// declarations import siblings without extensions), so generated bindings lose
// their types there; stdb-rx's entries themselves must still type-check.
import { of } from 'rxjs';
import { createSyncClient, CallbackError, type SyncClientOptions } from 'stdb-rx';
import { retryBackoff, type RetryBackoffConfig } from 'stdb-rx/operators';
import type { StorageOptions } from 'stdb-rx/storage';

const retry: Partial<RetryBackoffConfig> = { initialInterval: 100 };
export const stream = of(1).pipe(retryBackoff({ initialInterval: 100, ...retry }));
export const isCallbackError = (e: unknown): e is CallbackError => e instanceof CallbackError;
export type Options = SyncClientOptions<never>;
export type Storage = StorageOptions['lease'];
export const create = createSyncClient;
