/** Input limits, enforced at the edge (and the answer count in the write script). Listed in the README. */
export const LIMITS = {
  /** Largest request body. */
  bodyBytes: 256 * 1024,
  /** Longest user_id, string quiz_id and question id. */
  idLength: 128,
  /** Most answers one attempt holds. */
  answersPerAttempt: 500,
  /** Most answers one request carries. */
  answersPerRequest: 100,
  /** Largest answer, as JSON text. */
  answerBytes: 4096,
  /** Deepest nesting inside one answer. */
  answerDepth: 8,
  /** Largest time limit: 7 days. */
  timeLimitSeconds: 7 * 86_400,
  /** Highest current_question index. */
  currentQuestion: 10_000,
  /** Longest reason a proctor gives for a live control. */
  reasonLength: 500,
  /** Largest `data` of one client event, as JSON text. */
  clientEventDataBytes: 2048,
  /** Highest version a client may send (PostgreSQL integer). */
  version: 2_147_483_647,
} as const;
