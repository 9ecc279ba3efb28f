/**
 * What a client sent, as text: the decoded path, the header values, the body as sent and every
 * string (key or value) inside it when it is JSON. Error messages may echo the client's own input
 * (a question id, a path); the leak check in contract.ts (expectErrorContract) masks that input before it looks
 * for internals, so a client's SQL-looking key is not mistaken for SQL the service wrote.
 */
export type ClientText = readonly string[];

/** Bodies larger than this are not searched (the service echoes nothing from a refused upload). */
const MAX_SEARCHED_BODY = 1024 * 1024;

function decodedPath(path: string): string[] {
  try {
    return [path, decodeURIComponent(path)];
  } catch {
    return [path];
  }
}

/** Every string in a JSON value: object keys and string leaves. */
function jsonStrings(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) jsonStrings(item, out);
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      jsonStrings(item, out);
    }
  }
}

/** The client's text of one request. */
export function clientText(path: string, headers: Record<string, string> | undefined, body: unknown): ClientText {
  const out = [...decodedPath(path), ...Object.values(headers ?? {})];
  let text: string | undefined;
  if (typeof body === 'string') text = body;
  else if (body instanceof Uint8Array) text = body.length <= MAX_SEARCHED_BODY ? Buffer.from(body).toString('utf8') : undefined;
  else if (body !== undefined) jsonStrings(body, out);
  if (text !== undefined && text.length <= MAX_SEARCHED_BODY) {
    out.push(text);
    try {
      jsonStrings(JSON.parse(text), out);
    } catch {
      // not JSON: the text itself is what was sent
    }
  }
  return out;
}

/** The shortest echo masked: shorter runs are as likely the service's own words as the client's. */
const MIN_ECHO = 3;

/**
 * `message` with every run of at least MIN_ECHO characters that occurs in the client's text
 * replaced by `«sent»`, longest run first from left to right.
 */
export function maskClientText(message: string, sent: ClientText): string {
  const occurs = (s: string) => sent.some((t) => t.includes(s));
  let out = '';
  let i = 0;
  while (i < message.length) {
    let len = 0;
    while (i + len < message.length && occurs(message.slice(i, i + len + 1))) len++;
    if (len >= MIN_ECHO) {
      out += '«sent»';
      i += len;
    } else {
      out += message[i];
      i++;
    }
  }
  return out;
}
