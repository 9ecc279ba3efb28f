import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Routes } from '../routeTable';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError, RouteNotFoundError, ValidationError } from '../../shared/errors';
import { quizIdParam, userIdParam } from '../schemas/quiz';
import { parse } from '../validate';

/*
 * The pages: the student reference client (GET /demo) and the proctor console (GET /console),
 * static files built by `npm run build` into dist/web (scripts/build-web.mjs), served with a
 * Content-Security-Policy that allows only this origin's scripts, styles and connections: no inline
 * script or style, no other origin, no framing.
 */

/** The pages' security headers. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

/** GET /demo: the quiz, and the user in open mode (with authentication on, the page asks for a token). */
export const demoQuery = z.strictObject({ quiz: quizIdParam, user: userIdParam.optional() });
/** GET /console: the quiz. */
export const consoleQuery = z.strictObject({ quiz: quizIdParam });

/** The files a page may load, by name, and their types. */
const ASSETS: Record<string, string> = {
  'demo.js': 'text/javascript; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'session-client.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** dist/web of the repository (or image) this file runs from: the nearest directory above with a package.json. */
function webDir(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'dist/web');
  }
  return path.resolve(__dirname, '../../../web');
}

/** 503: the bundle was not built (`npm run build`). */
class PagesNotBuiltError extends AppError {
  constructor() {
    super(503, 'SERVICE_UNAVAILABLE', 'The pages are not built on this server (npm run build)');
  }
}

/** Serves /demo, /console and their assets from `dir` (dist/web), each file read once. */
export function registerWebRoutes(router: Routes, dir = webDir()): void {
  const cache = new Map<string, Buffer>();
  const file = (name: string): Buffer => {
    let body = cache.get(name);
    if (!body) {
      const full = path.join(dir, name);
      if (!existsSync(full)) throw new PagesNotBuiltError();
      body = readFileSync(full);
      cache.set(name, body);
    }
    return body;
  };
  const send = (ctx: Context, name: string, type: string) => {
    const body = file(name);
    ctx.set(PAGE_HEADERS);
    ctx.type = type;
    ctx.body = body;
  };

  router.get('/demo', (ctx) => {
    // a token in a query would sit in logs and the browser's history: the fragment keeps it in the page
    if (ctx.query.token !== undefined)
      throw new ValidationError(
        'token: give it after # (/demo?quiz=<id>#token=<JWT>), which is never sent to a server, or paste it',
        'token',
      );
    parse(demoQuery, ctx.query, 'query');
    send(ctx, 'demo.html', 'text/html; charset=utf-8');
  });
  router.get('/console', (ctx) => {
    parse(consoleQuery, ctx.query, 'query');
    send(ctx, 'console.html', 'text/html; charset=utf-8');
  });
  router.get('/web/:file', (ctx) => {
    const name = ctx.params.file;
    const type = Object.prototype.hasOwnProperty.call(ASSETS, name) ? ASSETS[name] : undefined;
    if (!type) throw new RouteNotFoundError(ctx.method, ctx.path);
    send(ctx, name, type);
  });
}
