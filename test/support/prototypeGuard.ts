/** The built-in prototypes a polluting input would reach first. */
const PROTOTYPES: Record<string, object> = {
  'Object.prototype': Object.prototype,
  'Array.prototype': Array.prototype,
  'Function.prototype': Function.prototype,
  'String.prototype': String.prototype,
};

/** The own property names of each watched prototype, sorted. */
export type PrototypeSnapshot = Record<string, string[]>;

/** Records the own property names of the built-in prototypes. */
export function snapshotPrototypes(): PrototypeSnapshot {
  const out: PrototypeSnapshot = {};
  for (const [name, proto] of Object.entries(PROTOTYPES)) out[name] = Reflect.ownKeys(proto).map(String).sort();
  return out;
}

/**
 * Throws when any watched prototype gained or lost a property since `before`, or when a plain
 * object inherits something a polluting payload would set.
 */
export function assertNoPollution(before: PrototypeSnapshot): void {
  const now = snapshotPrototypes();
  for (const name of Object.keys(before)) {
    const added = now[name].filter((key) => !before[name].includes(key));
    const removed = before[name].filter((key) => !now[name].includes(key));
    if (added.length > 0 || removed.length > 0)
      throw new Error(`${name} changed: added ${JSON.stringify(added)}, removed ${JSON.stringify(removed)}`);
  }
  const probe = {} as Record<string, unknown>;
  for (const key of ['polluted', 'isAdmin', 'k', 'x', 'status']) {
    if (probe[key] !== undefined) throw new Error(`({}).${key} is ${String(probe[key])}: Object.prototype is polluted`);
  }
  if (Object.getPrototypeOf(probe) !== Object.prototype) throw new Error('a plain object no longer has Object.prototype as its prototype');
}
