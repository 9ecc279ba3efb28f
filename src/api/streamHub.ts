import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { Attempt } from '../shared/domain/attempt';
import { AppError, ServiceUnavailableError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { Config } from '../shared/config';
import { subscriberTopology, type RedisLocation, type SubscriberTopology } from '../shared/redis';
import { pubSubOf, type ChangeFeed, type PubSubMode } from '../shared/store/channels';
import { ChangeSubscriber } from '../shared/store/changeSubscriber';
import { decodeRendered } from '../shared/store/sessionCodec';

/** How long a client waits before it reconnects (the SSE `retry:` field), ms. */
export const RECONNECT_MS = 2_000;
/** Bytes a slow client may leave unread before its stream is closed (it resumes with Last-Event-ID). */
export const MAX_BUFFERED_BYTES = 256 * 1024;

/** 503: this API process holds MAX_STREAMS streams; another process (or a retry) takes it. */
export class TooManyStreamsError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 5;
  constructor(max: number) {
    super(503, 'SERVICE_UNAVAILABLE', `This API process serves its most streams (${max}); retry shortly`);
  }
}

/**
 * One open Server-Sent Events response. The frames written in one turn of the event loop go out
 * in one write: the response is corked at a turn's first frame and uncorked once the turn is done
 * (process.nextTick), so the changes of one read from Redis (a quiz's stream gets every write of
 * its quiz, many to a read under load) cost the socket one syscall, not one each.
 */
export class SseStream {
  private ended = false;
  private corked = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly onEnd: () => void,
  ) {
    res.on('close', () => this.end());
  }

  /** Writes one event; a client too slow to read it is closed instead. */
  send(event: string, data: string, id?: string): void {
    this.write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${data}\n\n`);
  }

  /** A comment line, which keeps idle proxies from closing the connection. */
  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  private write(frame: string): void {
    if (this.ended) return;
    if (this.res.writableLength > MAX_BUFFERED_BYTES) return this.end();
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    this.res.write(frame);
  }

  /** Ends the response (once) and lets the hub forget it. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    if (!this.res.writableEnded) this.res.end();
  }
}

/** What a stream does: what it follows, its first frames, each change, and its periodic frame. */
export interface StreamSpec {
  /** The changes it follows (channels.ts: attemptFeed, quizFeed). */
  feed: ChangeFeed;
  /** Reads what the stream starts from, before any byte is sent (an error here is the response's). */
  prepare(): Promise<void>;
  /** Writes the first frames. */
  open(stream: SseStream): void;
  /** A change of an attempt on the feed (in publication order on each channel). */
  change(stream: SseStream, attempt: Attempt): void;
  /** A client event of an attempt of the feed (a quiz's feed carries them), as published. */
  clientEvent?(stream: SseStream, message: string): void;
  /** Every timeEventMs (the `time` event, or a keep-alive). */
  tick(stream: SseStream): void;
}

/** What a feed carries: an attempt's change, or a client event (JSON text, passed on as it is). */
type Delivery = { attempt: Attempt } | { clientEvent: string };

/** A stream (open, or being opened) of a feed. */
interface Listener {
  deliver(delivery: Delivery): void;
  /** The feed's subscription was lost: changes may have been missed. */
  lost(): void;
}

/** One feed this process follows: its streams and its subscription (settled once Redis confirmed it). */
interface Topic {
  feed: ChangeFeed;
  listeners: Set<Listener>;
  subscribed: Promise<void>;
}

/**
 * The Server-Sent Events of one API process. The write scripts publish every change (channels.ts);
 * the process subscribes once to each feed its streams follow (an attempt's channel, or a quiz's
 * channels), decodes each message once and hands it to every stream of that feed. Bounded by
 * `maxStreams`; ended on shutdown. When a feed's subscription is lost (changeSubscriber.ts: its
 * connection closed, or its slot moved), messages may have been missed: the streams of that feed,
 * and only those, are ended, and their clients resume (Last-Event-ID) from the current state.
 */
export class StreamHub {
  private readonly topics = new Map<string, Topic>();
  /** Each subscribed channel's topic. */
  private readonly topicOf = new Map<string, Topic>();
  private readonly streams = new Set<SseStream>();
  private readonly subscriber: ChangeSubscriber;
  private reserved = 0;

  constructor(
    mode: PubSubMode,
    topology: SubscriberTopology,
    private readonly options: { maxStreams: number; timeEventMs: number },
    private readonly log?: Logger,
  ) {
    this.subscriber = new ChangeSubscriber(
      mode,
      topology,
      { message: (channel, text) => this.deliver(channel, text), lost: (channels, why) => this.lost(channels, why) },
      log,
    );
  }

  /** Streams open now (and being opened). */
  get size(): number {
    return this.streams.size + this.reserved;
  }

  /** Feeds subscribed now (or being subscribed). */
  get feeds(): number {
    return this.topics.size;
  }

  /**
   * Serves `spec` as the response of ctx: subscribes, prepares, then writes the event-stream
   * headers. Changes published between the subscription and the first frames are delivered after
   * them, in order, so none is missed.
   */
  async serve(ctx: Context, spec: StreamSpec): Promise<void> {
    if (this.size >= this.options.maxStreams) throw new TooManyStreamsError(this.options.maxStreams);
    this.reserved++;
    let early: Delivery[] | null = [];
    let stream: SseStream | null = null;
    const hand = (to: SseStream, d: Delivery) => ('attempt' in d ? spec.change(to, d.attempt) : spec.clientEvent?.(to, d.clientEvent));
    let lostEarly = false;
    const listener: Listener = {
      deliver: (delivery) => {
        if (stream) hand(stream, delivery);
        else early?.push(delivery);
      },
      lost: () => {
        if (stream) stream.end();
        else lostEarly = true;
      },
    };
    try {
      await this.listen(spec.feed, listener);
      await spec.prepare();
      // lost while preparing: what was read may already be behind
      if (lostEarly) throw new ServiceUnavailableError('redis');
    } catch (err) {
      this.unlisten(spec.feed, listener);
      throw err;
    } finally {
      this.reserved--;
    }
    const { req, res } = ctx;
    // the first tick comes a whole interval after `opened` is made
    const timer = setInterval(() => spec.tick(opened), this.options.timeEventMs);
    const opened = new SseStream(res, () => {
      clearInterval(timer);
      this.unlisten(spec.feed, listener);
      this.streams.delete(opened);
    });
    this.streams.add(opened);
    ctx.respond = false;
    ctx.status = 200;
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    spec.open(opened);
    stream = opened;
    for (const delivery of early) hand(opened, delivery);
    early = null;
  }

  /** Ends every stream (shutdown). */
  endAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }

  /** Ends every stream and closes the subscriptions. */
  async close(): Promise<void> {
    this.endAll();
    await this.subscriber.close();
  }

  private async listen(feed: ChangeFeed, listener: Listener): Promise<void> {
    let topic = this.topics.get(feed.name);
    if (!topic) {
      const created: Topic = { feed, listeners: new Set(), subscribed: Promise.resolve() };
      topic = created;
      this.topics.set(feed.name, created);
      for (const channel of feed.channels) this.topicOf.set(channel, created);
      created.subscribed = this.subscriber.subscribe(feed.channels).catch((err: unknown) => {
        // forget the failed subscription, so the next stream of the feed tries again
        this.log?.debug(`stream subscription to ${feed.name} failed: ${String(err)}`);
        this.drop(created);
        throw new ServiceUnavailableError('redis');
      });
    }
    topic.listeners.add(listener);
    await topic.subscribed;
  }

  private unlisten(feed: ChangeFeed, listener: Listener): void {
    const topic = this.topics.get(feed.name);
    if (!topic?.listeners.delete(listener) || topic.listeners.size > 0) return;
    this.drop(topic);
  }

  /** Forgets a topic and unsubscribes its channels. */
  private drop(topic: Topic): void {
    if (this.topics.get(topic.feed.name) !== topic) return;
    this.topics.delete(topic.feed.name);
    for (const channel of topic.feed.channels) if (this.topicOf.get(channel) === topic) this.topicOf.delete(channel);
    this.subscriber.unsubscribe(topic.feed.channels);
  }

  /** Channels whose subscription was lost: the streams of their feeds end (their clients resume). */
  private lost(channels: readonly string[], why: string): void {
    const topics = new Set<Topic>();
    for (const channel of channels) {
      const topic = this.topicOf.get(channel);
      if (topic) topics.add(topic);
    }
    if (topics.size === 0) return;
    let ended = 0;
    for (const topic of topics) {
      this.drop(topic);
      for (const listener of topic.listeners) listener.lost();
      ended += topic.listeners.size;
    }
    this.log?.warn(`stream subscriptions lost (${why}): ending the ${ended} streams of ${topics.size} feeds so their clients resume`);
  }

  private deliver(channel: string, message: string): void {
    const listeners = this.topicOf.get(channel)?.listeners;
    if (!listeners) return;
    let delivery: Delivery;
    try {
      // a change is render()'s array; a client event (published by the API on the same quiz
      // channel, channels.ts) is an object under `client_event`, passed on unchanged
      const parsed = JSON.parse(message) as string[] | { client_event: unknown };
      delivery = Array.isArray(parsed)
        ? { attempt: decodeRendered(parsed).attempt }
        : { clientEvent: JSON.stringify((parsed as { client_event: unknown }).client_event) };
    } catch (err) {
      this.log?.warn(`unreadable change on ${channel}: ${String(err)}`);
      return;
    }
    for (const listener of listeners) listener.deliver(delivery);
  }
}

/** The hub of an API process, with subscriptions of its own (its key layout's pub/sub; MAX_STREAMS, STREAM_TIME_EVENT_SECONDS). */
export function createStreamHub(
  config: RedisLocation & Pick<Config, 'REDIS_KEY_LAYOUT' | 'MAX_STREAMS' | 'STREAM_TIME_EVENT_SECONDS'>,
  log: Logger,
  name: string,
): StreamHub {
  return new StreamHub(
    pubSubOf(config.REDIS_KEY_LAYOUT),
    subscriberTopology(config, name),
    { maxStreams: config.MAX_STREAMS, timeEventMs: config.STREAM_TIME_EVENT_SECONDS * 1000 },
    log,
  );
}
