import type { Attempt } from './types';

/** A write sent (or about to be) with its key: a retry of it is this very request again. */
export interface SealedWrite {
  key: string;
  version: number;
  answers: Record<string, unknown>;
}

/** A client event waiting to be sent. */
export interface QueuedNote {
  type: string;
  client_time: string;
  data?: Record<string, unknown>;
}

/**
 * What a client keeps of its attempt where it survives a closed tab (localStorage) or not (memory):
 * the last attempt seen, the write in flight and the answers not yet sent.
 */
export interface SavedState {
  attemptId: string;
  attempt: Attempt;
  sending: SealedWrite | null;
  pending: Record<string, unknown>;
  notes: QueuedNote[];
}

/** Where a client keeps its SavedState, under a key of its own (quiz and user). */
export interface StateStore {
  load(key: string): SavedState | null;
  save(key: string, state: SavedState): void;
  remove(key: string): void;
}

/** Kept in this process only (Node, tests). */
export class MemoryStateStore implements StateStore {
  private readonly map = new Map<string, string>();
  load(key: string): SavedState | null {
    const text = this.map.get(key);
    return text === undefined ? null : (JSON.parse(text) as SavedState);
  }
  save(key: string, state: SavedState): void {
    this.map.set(key, JSON.stringify(state));
  }
  remove(key: string): void {
    this.map.delete(key);
  }
}

/** The part of the Web Storage API (localStorage) the client uses. */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * In a Web Storage (a browser's localStorage: it survives a closed tab and a restart). Unreadable
 * content (another program's key, a quota error) is treated as nothing kept, never as a crash.
 */
export class WebStateStore implements StateStore {
  constructor(
    private readonly storage: WebStorage,
    private readonly prefix = 'quiz-session:',
  ) {}
  load(key: string): SavedState | null {
    try {
      const text = this.storage.getItem(this.prefix + key);
      if (text === null) return null;
      const state = JSON.parse(text) as SavedState;
      return typeof state?.attemptId === 'string' && typeof state.pending === 'object' ? state : null;
    } catch {
      return null;
    }
  }
  save(key: string, state: SavedState): void {
    try {
      this.storage.setItem(this.prefix + key, JSON.stringify(state));
    } catch {
      // full or refused: the answers are still held in memory and sent when the network allows
    }
  }
  remove(key: string): void {
    try {
      this.storage.removeItem(this.prefix + key);
    } catch {
      // nothing to do
    }
  }
}
