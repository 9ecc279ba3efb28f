import Router from '@koa/router';
import type { Middleware } from 'koa';

/** What the route modules register routes through: a Router, or a RouteTable. */
export type Routes = Pick<Router, 'get' | 'post' | 'put' | 'patch' | 'delete'>;

/**
 * The app's routes in groups, one @koa/router each, a request matched against its own group's
 * routes only. A Router tests every pattern it holds against every request (it collects all the
 * matches, then runs them), logging each test to `debug`: with both session prefixes and the quiz,
 * listing, page and health routes in one Router that was some forty patterns per request, a
 * visible share of a GET's CPU at load. The group of a path under a session prefix is its shape
 * there: one segment (`/start`, `/:id`), or two and the second's text (`/:id/progress`,
 * `/:id/events`, …), or deeper; every other path is in one group of its own. A route's pattern
 * and a request's path come to the same group by the same rule (a trailing slash, which the
 * Router takes, is dropped first), so a group holds every method of its paths, and a path no
 * group holds gets an empty Router: 404 and 405 are the Router's as before.
 */
export class RouteTable implements Routes {
  private readonly prefixes: readonly string[];
  private readonly groups = new Map<string, Router>();
  /** What a request of a group nobody registered is matched against: nothing. */
  private readonly none = new Router();

  /** `prefixes` without their trailing slash, e.g. `/api/sessions`. */
  constructor(prefixes: readonly string[]) {
    this.prefixes = prefixes.map((prefix) => `${prefix}/`);
  }

  /** The group of a route's pattern or of a request's path. */
  private groupOf(path: string): string {
    for (const prefix of this.prefixes) {
      if (!path.startsWith(prefix)) continue;
      let rest = path.slice(prefix.length);
      if (rest.endsWith('/')) rest = rest.slice(0, -1);
      const slash = rest.indexOf('/');
      if (slash < 0) return `${prefix} 1`;
      const second = rest.slice(slash + 1);
      return second.includes('/') ? `${prefix} deeper` : `${prefix} 2 ${second}`;
    }
    return 'other';
  }

  /** The Router that serves `path` (a request's path): its group's, or an empty one. */
  routerOf(path: string): Router {
    return this.groups.get(this.groupOf(path)) ?? this.none;
  }

  /** The Router a route with this pattern goes on (made on its group's first route). */
  private routerFor(pattern: string): Router {
    const group = this.groupOf(pattern);
    let router = this.groups.get(group);
    if (!router) this.groups.set(group, (router = new Router()));
    return router;
  }

  readonly get = ((path: string, ...middleware: Middleware[]) => this.routerFor(path).get(path, ...middleware)) as Router['get'];
  readonly post = ((path: string, ...middleware: Middleware[]) => this.routerFor(path).post(path, ...middleware)) as Router['post'];
  readonly put = ((path: string, ...middleware: Middleware[]) => this.routerFor(path).put(path, ...middleware)) as Router['put'];
  readonly patch = ((path: string, ...middleware: Middleware[]) => this.routerFor(path).patch(path, ...middleware)) as Router['patch'];
  readonly delete = ((path: string, ...middleware: Middleware[]) => this.routerFor(path).delete(path, ...middleware)) as Router['delete'];

  /** The middleware that runs a request's routes: those of its path's group (registered before this is called). */
  routes(): Middleware {
    const served = new Map<Router, Middleware>([[this.none, this.none.routes() as Middleware]]);
    for (const router of this.groups.values()) served.set(router, router.routes() as Middleware);
    return (ctx, next) => served.get(this.routerOf(ctx.path))!(ctx, next);
  }
}
