import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import type { Logger } from '../logger';
import type { SubscriberTopology } from '../redis';
import type { PubSubMode } from './channels';

/*
 * The subscriptions of one API process to the change channels (channels.ts), in the mode of its key
 * layout: SUBSCRIBE, or SSUBSCRIBE on the master that serves each channel's slot.
 *
 * One connection per node, opened when a channel first needs it, in subscriber mode and carrying
 * nothing else. A connection never reconnects or resubscribes by itself: a subscription that was
 * lost may have missed messages, so it is reported (`lost`) and forgotten, and whoever followed it
 * starts again from the current state (a stream's client resumes with Last-Event-ID). Lost means:
 *   - its connection closed (the node went away, or the network);
 *   - the node dropped it (Redis 7 sends SUNSUBSCRIBE to the subscribers of a slot's channels when
 *     the slot moves: a failover, or resharding); only that slot's channels are lost;
 *   - the slot map, refreshed, puts its slot on a shard its connection's node is not part of.
 * Only the channels of what was lost are reported, never the process's others.
 *
 * Not ioredis' Cluster `shardedSubscribers` (5.11): it gives no sign that a subscription was lost or
 * moved, and after a CLUSTER FAILOVER its subscription to the old master stayed unsubscribed with
 * nothing resubscribing it (seen on Redis 7.0 here). ioredis' Redis client has no event for an
 * unsolicited SUNSUBSCRIBE either: it takes it for the reply of the oldest command waiting, and
 * with none waiting emits "Command queue state error … Last reply: sunsubscribe,<channel>,<count>".
 * That error is read here: with no command waiting, the named channel is lost (and the count must
 * then be what this connection holds); any other such error means replies and commands may have
 * been paired wrongly, and the whole connection is given up.
 */

/** What a subscriber reports. */
export interface ChangeHandlers {
  /** A message on a subscribed channel. */
  message(channel: string, text: string): void;
  /** These subscribed channels are no longer subscribed (`why` for the log). */
  lost(channels: readonly string[], why: string): void;
}

/** How long a subscribe keeps trying (a node away, its slots moving) before it fails. */
export const SUBSCRIBE_TRY_MS = 3000;

/** A channel on its connection: asked for, or confirmed by Redis. */
type ChannelState = 'pending' | 'active';

/** One connection to one node. */
interface Link {
  node: string;
  redis: Redis;
  /** Its channels, with the slot of each. */
  channels: Map<string, { slot: number; state: ChannelState }>;
  ready: Promise<void>;
  retired: boolean;
}

const QUEUE_ERROR = 'Command queue state error';
const UNSOLICITED_UNSUBSCRIBE = /Last reply: s?unsubscribe,([\s\S]*),(\d+)$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Channels grouped by a key. */
function groupBy<K>(items: readonly string[], key: (item: string) => K): Map<K, string[]> {
  const groups = new Map<K, string[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** The change subscriptions of a process: see above. */
export class ChangeSubscriber {
  private readonly links = new Map<string, Link>();
  /** Every subscribed (or being subscribed) channel's connection. */
  private readonly linkOf = new Map<string, Link>();
  private closed = false;
  /** Channels lost and not yet reported, with why. */
  private readonly unreported = new Map<string, string>();

  constructor(
    private readonly mode: PubSubMode,
    private readonly topology: SubscriberTopology,
    private readonly handlers: ChangeHandlers,
    private readonly log?: Logger,
  ) {
    topology.onRefresh(() => this.checkPlacement());
  }

  /**
   * Subscribes to `channels`; resolves once Redis confirmed every one. Tries again while a node is
   * away or a slot moves, for SUBSCRIBE_TRY_MS; rejects after that (the channels confirmed by then
   * stay subscribed: the caller unsubscribes).
   */
  async subscribe(channels: readonly string[]): Promise<void> {
    const until = Date.now() + SUBSCRIBE_TRY_MS;
    // a channel subscribed already is left as it is
    let pending = channels.filter((c) => !this.linkOf.has(c));
    for (let round = 1; ; round++) {
      if (this.closed) throw new Error('the subscriber is closed');
      const failed = await this.trySubscribe(pending, until);
      if (failed.channels.length === 0) return;
      if (Date.now() + 50 * round > until) throw failed.error ?? new Error('no node serves these channels');
      this.topology.refresh();
      await sleep(50 * round);
      pending = failed.channels;
    }
  }

  /** Unsubscribes from `channels` (those subscribed; at once, without waiting for Redis). */
  unsubscribe(channels: readonly string[]): void {
    const byLink = new Map<Link, string[]>();
    for (const channel of channels) {
      const link = this.linkOf.get(channel);
      if (!link) continue;
      this.forget(link, channel);
      const gone = byLink.get(link);
      if (gone) gone.push(channel);
      else byLink.set(link, [channel]);
    }
    for (const [link, gone] of byLink) {
      if (link.retired || link.redis.status !== 'ready') continue;
      for (const group of groupBy(gone, (c) => calculateSlot(c)).values())
        link.redis[this.mode.unsubscribe](...group).catch(() => undefined);
    }
  }

  /** Closes every connection (nothing is reported lost). */
  async close(): Promise<void> {
    this.closed = true;
    for (const link of [...this.links.values()]) {
      link.retired = true;
      link.redis.disconnect();
    }
    this.links.clear();
    this.linkOf.clear();
    await this.topology.close();
  }

  /** One round: each channel to the node of its slot. Returns the channels that failed, to try again. */
  private async trySubscribe(channels: readonly string[], until: number): Promise<{ channels: string[]; error?: Error }> {
    if (channels.length === 0) return { channels: [] };
    if (channels.some((c) => this.topology.nodeOf(calculateSlot(c)) === undefined)) await this.topology.ready(until - Date.now());
    const failed: string[] = [];
    let error: Error | undefined;
    const byNode = groupBy(channels, (c) => this.topology.nodeOf(calculateSlot(c)));
    await Promise.all(
      [...byNode].map(async ([node, onNode]) => {
        if (node === undefined) {
          failed.push(...onNode);
          return;
        }
        const link = this.linkFor(node);
        try {
          await link.ready;
        } catch (err) {
          error = err as Error;
          failed.push(...onNode);
          return;
        }
        // one command per slot: a cluster refuses channels of several slots in one SSUBSCRIBE
        const bySlot = groupBy(onNode, (c) => calculateSlot(c));
        await Promise.all([...bySlot].map(async ([slot, group]) => failed.push(...(await this.subscribeOn(link, slot, group)))));
      }),
    );
    return { channels: failed, error };
  }

  /** SUBSCRIBEs `group` (channels of one slot) on `link`; returns those not confirmed. */
  private async subscribeOn(link: Link, slot: number, group: readonly string[]): Promise<string[]> {
    for (const channel of group) {
      link.channels.set(channel, { slot, state: 'pending' });
      this.linkOf.set(channel, link);
    }
    let refused = false;
    try {
      await link.redis[this.mode.subscribe](...group);
    } catch {
      refused = true; // MOVED (the map is behind), or the connection went
    }
    const failed: string[] = [];
    for (const channel of group) {
      const held = link.channels.get(channel);
      // still asked for, on a connection still trusted: Redis has it
      if (held?.state === 'pending' && !refused && !link.retired) held.state = 'active';
      else {
        if (held) this.forget(link, channel);
        failed.push(channel);
      }
    }
    return failed;
  }

  /** The connection to `node`, opened if there is none. */
  private linkFor(node: string): Link {
    const open = this.links.get(node);
    if (open) return open;
    const redis = new Redis({
      ...this.topology.optionsOf(node),
      lazyConnect: true,
      // lost is lost: reported, never quietly resubscribed (messages in between are gone)
      retryStrategy: () => null,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    const link: Link = { node, redis, channels: new Map(), ready: Promise.resolve(), retired: false };
    this.links.set(node, link);
    redis.on(this.mode.message, (channel: string, text: string) => this.handlers.message(channel, text));
    redis.on('error', (err: Error) => this.onError(link, err));
    redis.on('close', () => this.retire(link, `the connection to ${node} closed`));
    link.ready = redis
      .connect()
      .then(async () => {
        // a map a failover just made stale may name the old master: only a master takes new subscriptions
        if (!(await this.topology.accepts(redis))) throw new Error(`${node} no longer serves those slots as a master`);
      })
      .catch((err: Error) => {
        this.retire(link, `no connection to ${node}`);
        throw err;
      });
    return link;
  }

  private onError(link: Link, err: Error): void {
    if (!err.message.includes(QUEUE_ERROR)) {
      this.log?.debug(`redis (stream subscriptions, ${link.node}): ${err.message}`);
      return;
    }
    const pushed = UNSOLICITED_UNSUBSCRIBE.exec(err.message);
    if (!pushed) return this.retire(link, `an unexpected reply on the connection to ${link.node}`);
    const [, channel, count] = pushed;
    const held = link.channels.get(channel);
    if (held) this.forget(link, channel);
    // nothing was waiting (else the reply named would be a command's): what Redis counts must be
    // what this connection holds; if not, replies were paired with the wrong commands
    if (link.channels.size !== Number(count)) return this.retire(link, `Redis dropped subscriptions on ${link.node}`);
    if (held?.state === 'active') this.report([channel], `${link.node} dropped it (its slot moved)`);
    // none left (a master turned replica drops them all): new subscriptions open a connection anew, which checks the node
    if (link.channels.size === 0) this.retire(link, `${link.node} dropped every subscription`);
    this.topology.refresh();
  }

  /** Gives a connection up: its confirmed channels are lost; those being subscribed fail and try again. */
  private retire(link: Link, why: string): void {
    if (link.retired) return;
    link.retired = true;
    if (this.links.get(link.node) === link) this.links.delete(link.node);
    const lost: string[] = [];
    for (const [channel, { state }] of link.channels) {
      if (state === 'active') lost.push(channel);
      if (this.linkOf.get(channel) === link) this.linkOf.delete(channel);
    }
    link.channels.clear();
    // (a connection closed already needs nothing: ioredis would wait 2 s for a close it had)
    if (link.redis.status !== 'close' && link.redis.status !== 'end') link.redis.disconnect();
    if (this.closed) return;
    this.report(lost, why);
    this.topology.refresh();
  }

  /**
   * After a refresh of the slot map: channels whose connection's node no longer serves their slot
   * are lost. A node still in the slot's shard, as a replica now, does serve it: Redis hands a
   * shard's messages to its replicas' subscribers too (a subscription made from a map a failover
   * had just made stale may sit there).
   */
  private checkPlacement(): void {
    for (const link of [...this.links.values()]) {
      const moved: string[] = [];
      for (const [channel, { slot }] of link.channels) {
        if (this.topology.nodeOf(slot) !== undefined && !this.topology.serves(link.node, slot)) moved.push(channel);
      }
      if (moved.length === 0) continue;
      const active = moved.filter((c) => link.channels.get(c)?.state === 'active');
      this.unsubscribe(moved);
      this.report(active, `their slots moved from ${link.node}`);
    }
  }

  private forget(link: Link, channel: string): void {
    link.channels.delete(channel);
    if (this.linkOf.get(channel) === link) this.linkOf.delete(channel);
  }

  /**
   * Reports lost channels once the reply being read is done with. A slot's move comes as a burst
   * of SUNSUBSCRIBEs, read in one go; reacting at once (the hub unsubscribes the rest of a lost
   * feed, on this same connection too) would send commands the rest of the burst is then paired
   * with, and the whole connection would have to be given up.
   */
  private report(channels: readonly string[], why: string): void {
    if (channels.length === 0) return;
    const first = this.unreported.size === 0;
    for (const channel of channels) this.unreported.set(channel, why);
    if (!first) return;
    setImmediate(() => {
      const byWhy = groupBy([...this.unreported.keys()], (c) => this.unreported.get(c)!);
      this.unreported.clear();
      if (this.closed) return;
      for (const [reason, lost] of byWhy) this.handlers.lost(lost, reason);
    });
  }
}
