/* The rules of idempotency keys (src/shared/store/idempotencyStore.ts keeps the records). */

/** How long a response is kept for its key. */
export const IDEMPOTENCY_TTL_SECONDS = 86_400;
/** How long a pending claim holds when its request never finishes (its process died). */
export const IDEMPOTENCY_LOCK_SECONDS = 60;
/** The longest key accepted, and its characters (printable ASCII). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Lua for the progress script: the TTL of a record. */
export const IDEMPOTENCY_LUA = `
local IDEMPOTENCY_TTL_SECONDS = ${IDEMPOTENCY_TTL_SECONDS}
`;
