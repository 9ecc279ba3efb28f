/* What both pages share: the query, the token kept for the tab, small DOM helpers. */

/** The longest id the service takes (src/shared/limits.ts idLength). */
const MAX_ID = 128;

/** A query parameter that must be printable text of 1–128 characters, or undefined. */
export function idParam(name: string): string | undefined {
  const value = new URLSearchParams(location.search).get(name);
  if (value === null || value.length === 0 || value.length > MAX_ID || /[\u0000-\u001f\u007f]/.test(value)) return undefined;
  return value;
}

/**
 * The bearer token of this tab: one given in the URL's fragment (`#token=…`, which is never sent
 * to a server nor logged; removed from the address bar at once) or pasted into the page, kept in
 * sessionStorage under `key` for the tab's life.
 */
export function tabToken(key: string): string | undefined {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    keepToken(key, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  try {
    return sessionStorage.getItem(key) ?? undefined;
  } catch {
    return fromHash ?? undefined;
  }
}

/** Keeps a token for the tab (sessionStorage). */
export function keepToken(key: string, token: string): void {
  try {
    sessionStorage.setItem(key, token.trim());
  } catch {
    // storage refused: the token lasts until the page is reloaded
  }
}

/** Forgets the tab's token. */
export function dropToken(key: string): void {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // nothing kept
  }
}

/** The element with this id (the page's HTML has it). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A new element with attributes and children (text nodes for strings: never HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) el.append(child);
  return el;
}

/** A time as the pages show it: HH:MM:SS local. */
export const clockTime = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour12: false });

/**
 * The pasted-token form both pages share (#auth, #auth-message, #auth-token, #auth-form): `ask`
 * shows it with a message in place of `content`; a submitted token is kept for the tab under `key`
 * and handed to `taken`.
 */
export function tokenForm(key: string, content: () => HTMLElement, taken: (token: string) => void): { ask(message: string): void } {
  byId<HTMLFormElement>('auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = byId<HTMLInputElement>('auth-token').value.trim();
    if (!value) return;
    keepToken(key, value);
    byId('auth').hidden = true;
    taken(value);
  });
  return {
    ask(message) {
      content().hidden = true;
      byId('auth').hidden = false;
      byId('auth-message').textContent = message;
      byId<HTMLInputElement>('auth-token').focus();
    },
  };
}
