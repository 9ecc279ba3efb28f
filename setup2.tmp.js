const { sessionScripts } = require('/work/main/dist/src/shared/store/luaScripts.js');
const { Redis } = require('/work/main/node_modules/ioredis');
(async () => {
  const r = new Redis('redis://127.0.0.1:6379/14');
  const lua = sessionScripts('single').progress.lua;
  const marks = ['-- include fields', '-- include channels', '-- include write', '-- include idempotency'];
  const cuts = marks.map((m) => [m, lua.indexOf(m)]);
  // body start: the line after the idempotency piece: find first line after the idempotency include that begins with 'local key' or similar; take the src line after '--- @include "idempotency"' in the raw file
  const raw = require('fs').readFileSync('/work/main/src/shared/store/lua/progress-4.lua', 'utf8');
  const after = raw.slice(raw.indexOf('--- @include "idempotency"') + '--- @include "idempotency"'.length).split('\n').find((l) => l.trim() !== '');
  cuts.push(['body: ' + after.trim().slice(0, 40), lua.indexOf(after)]);
  const variants = [['trivial', 'return 0']];
  for (const [name, at] of cuts) variants.push(['before ' + name, lua.slice(0, at) + 'do return 0 end\n' + lua.slice(at)]);
  for (const [name, src] of variants) {
    const sha = await r.script('LOAD', src);
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      await r.config('RESETSTAT');
      for (let i = 0; i < 10000; i += 100) await Promise.all(Array.from({ length: 100 }, () => r.evalsha(sha, 4, 'a', 'b', 'c', 'd')));
      const st = await r.info('commandstats');
      best = Math.min(best, Number(/cmdstat_evalsha:.*usec_per_call=([\d.]+)/.exec(st)[1]));
    }
    console.log(name.padEnd(60), best);
  }
  r.disconnect();
})();
