// The pages' static bundle (npm run build): src/web's TypeScript bundled with esbuild into
// dist/web (one ES module per page, and the client library alone for other pages), with the HTML
// and the stylesheet beside them. The API serves them under /demo, /console and /web/.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/web');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: {
    demo: path.join(root, 'src/web/demo.ts'),
    console: path.join(root, 'src/web/console.ts'),
    'session-client': path.join(root, 'src/client/index.ts'),
  },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['demo.html', 'console.html', 'app.css']) cpSync(path.join(root, 'src/web', file), path.join(out, file));
