import Router from '@koa/router';
import type { Middleware } from 'koa';

/** What the route modules register routes through: a Router, or a RouteTable. */
export type Routes = Pick<Router, 'get' | 'post' | 'put' | 'patch' | 'delete'>;

/**
 * The app's routes, one @koa/router per path prefix (the session prefixes) and one for the rest. A
 * Router tests every route's pattern against every request (it collects all matches, then runs
 * them): with both session prefixes and the quiz, listing, page and health routes in one Router
 * that was some forty patterns per request, a visible share of a GET's CPU at load. Here a request
 * is matched against its own prefix's routes only, chosen by one `startsWith` per prefix. Routes
 * are registered as on a Router (`get`, `post`, …): each goes to the group its path starts with.
 */
export class RouteTable implements Routes {
  private readonly groups: ReadonlyArray<{ prefix: string; router: Router }>;
  private readonly rest = new Router();

  /** `prefixes` without their trailing slash, e.g. `/api/sessions`. */
  constructor(prefixes: readonly string[]) {
    this.groups = prefixes.map((prefix) => ({ prefix: `${prefix}/`, router: new Router() }));
  }

  /** The Router that serves `path` (a route's pattern or a request's path). */
  routerOf(path: string): Router {
    for (const group of this.groups) if (path.startsWith(group.prefix)) return group.router;
    return this.rest;
  }

  readonly get = ((path: string, ...middleware: Middleware[]) => this.routerOf(path).get(path, ...middleware)) as Router['get'];
  readonly post = ((path: string, ...middleware: Middleware[]) => this.routerOf(path).post(path, ...middleware)) as Router['post'];
  readonly put = ((path: string, ...middleware: Middleware[]) => this.routerOf(path).put(path, ...middleware)) as Router['put'];
  readonly patch = ((path: string, ...middleware: Middleware[]) => this.routerOf(path).patch(path, ...middleware)) as Router['patch'];
  readonly delete = ((path: string, ...middleware: Middleware[]) => this.routerOf(path).delete(path, ...middleware)) as Router['delete'];

  /** The middleware that runs a request's routes: those of its path's group. */
  routes(): Middleware {
    const served = new Map<Router, Middleware>([[this.rest, this.rest.routes() as Middleware]]);
    for (const { router } of this.groups) served.set(router, router.routes() as Middleware);
    return (ctx, next) => served.get(this.routerOf(ctx.path))!(ctx, next);
  }
}
