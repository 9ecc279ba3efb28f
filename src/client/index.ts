/*
 * The typed client of the quiz session service, for browsers and Node (20+): SessionClient for a
 * student's attempt, ProctorClient for a quiz's live view and controls. Types come from the
 * service's own schemas (types.ts). See README "Client library".
 */
export { SessionClient, browserOnlineSignal, type SaveState, type SessionClientEvents, type SessionClientOptions } from './sessionClient';
export { ProctorClient, type ProctorClientEvents } from './proctorClient';
export { ApiClient, ApiError, NetworkError, newKey, sendIdempotent, type ApiOptions, type Fetch } from './http';
export { EventStream, SseParser, type SseMessage } from './sse';
export { ServerClock, formatRemaining } from './clock';
export { MemoryStateStore, WebStateStore, type StateStore, type SavedState, type WebStorage } from './store';
export * from './types';
