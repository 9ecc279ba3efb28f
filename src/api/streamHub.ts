import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { RedisClient } from '../shared/redis';
import type { Attempt } from '../shared/domain/attempt';
import { AppError, ServiceUnavailableError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { Config } from '../shared/config';
import { createSubscriberRedis, isCluster, waitForReady, type RedisLocation } from '../shared/redis';
import { decodeRendered } from '../shared/store/sessionCodec';
import { CLIENT_EVENTS_SUFFIX } from '../shared/store/channels';

/** How long a client waits before it reconnects (the SSE `retry:` field), ms. */
export const RECONNECT_MS = 2_000;
/** How long a new stream waits for a subscriber that is still connecting. */
const SUBSCRIBE_WAIT_MS = 2_000;
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

/** One open Server-Sent Events response. */
export class SseStream {
  private ended = false;

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

/** What a stream does: its channels, its first frames, each change, and its periodic frame. */
export interface StreamSpec {
  channels: readonly string[];
  /** Reads what the stream starts from, before any byte is sent (an error here is the response's). */
  prepare(): Promise<void>;
  /** Writes the first frames. */
  open(stream: SseStream): void;
  /** A change of an attempt on one of the channels (in publication order). */
  change(stream: SseStream, attempt: Attempt): void;
  /** A client event on one of the channels (a quiz's client-event channel), as published. */
  clientEvent?(stream: SseStream, message: string): void;
  /** Every timeEventMs (the `time` event, or a keep-alive). */
  tick(stream: SseStream): void;
}

/** What a channel carries: an attempt's change, or a client event (JSON text, passed on as it is). */
type Delivery = { attempt: Attempt } | { clientEvent: string };
type Listener = (delivery: Delivery) => void;

/**
 * The Server-Sent Events of one API process. The write scripts publish every change (channels.ts);
 * one subscriber connection per process takes the channels its streams need, decodes each message
 * once and hands it to every stream of that channel. Bounded by `maxStreams`; ended on shutdown.
 * When the subscriber reconnects, messages may have been missed: every stream is ended, and clients
 * resume (Last-Event-ID) from the current state.
 */
export class StreamHub {
  /** Per channel: its streams' listeners, and the subscription (settled once Redis confirmed it). */
  private readonly listeners = new Map<string, { set: Set<Listener>; subscribed: Promise<void> }>();
  private readonly streams = new Set<SseStream>();
  private reserved = 0;
  private connectedBefore = false;

  constructor(
    private readonly sub: RedisClient,
    private readonly options: { maxStreams: number; timeEventMs: number },
    private readonly log?: Logger,
  ) {
    sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
    sub.on('ready', () => {
      if (this.connectedBefore && this.streams.size > 0) {
        this.log?.warn(`stream subscriber reconnected: ending ${this.streams.size} streams so their clients resume`);
        this.endAll();
      }
      this.connectedBefore = true;
    });
    // on a cluster the subscriber is one node's connection, which ioredis moves to another node
    // when its node goes (resubscribing, but messages in between are lost): a node leaving is the sign
    if (isCluster(sub)) {
      sub.on('-node', () => {
        if (this.streams.size === 0) return;
        this.log?.warn(`a cluster node left: ending ${this.streams.size} streams so their clients resume`);
        this.endAll();
      });
    }
  }

  /** Streams open now (and being opened). */
  get size(): number {
    return this.streams.size + this.reserved;
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
    const listener: Listener = (delivery) => {
      if (stream) hand(stream, delivery);
      else early?.push(delivery);
    };
    const unlisten = () => {
      for (const channel of spec.channels) this.unlisten(channel, listener);
    };
    try {
      await Promise.all(spec.channels.map((channel) => this.listen(channel, listener)));
      await spec.prepare();
    } catch (err) {
      unlisten();
      throw err;
    } finally {
      this.reserved--;
    }
    const { req, res } = ctx;
    // the first tick comes a whole interval after `opened` is made
    const timer = setInterval(() => spec.tick(opened), this.options.timeEventMs);
    const opened = new SseStream(res, () => {
      clearInterval(timer);
      unlisten();
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

  /** Ends every stream (shutdown; or a reconnect of the subscriber). */
  endAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }

  /** Ends every stream and closes the subscriber. */
  async close(): Promise<void> {
    this.endAll();
    await this.sub.quit().catch(() => this.sub.disconnect());
  }

  private async listen(channel: string, listener: Listener): Promise<void> {
    let entry = this.listeners.get(channel);
    if (!entry) {
      // a subscriber still connecting (the process just started) gets a moment, not a refusal
      const subscribed = waitForReady(this.sub, SUBSCRIBE_WAIT_MS)
        .then(() => this.sub.subscribe(channel))
        .then(
          () => undefined,
          () => {
            // forget the failed subscription, so the next stream of the channel tries again
            if (this.listeners.get(channel) === entry) this.listeners.delete(channel);
            throw new ServiceUnavailableError('redis');
          },
        );
      entry = { set: new Set(), subscribed };
      this.listeners.set(channel, entry);
    }
    entry.set.add(listener);
    await entry.subscribed;
  }

  private unlisten(channel: string, listener: Listener): void {
    const entry = this.listeners.get(channel);
    if (!entry?.set.delete(listener) || entry.set.size > 0) return;
    this.listeners.delete(channel);
    this.sub.unsubscribe(channel).catch(() => undefined);
  }

  private deliver(channel: string, message: string): void {
    const set = this.listeners.get(channel)?.set;
    if (!set) return;
    let delivery: Delivery;
    try {
      // a client event is published by the API as its JSON object, passed on unchanged
      if (channel.endsWith(CLIENT_EVENTS_SUFFIX)) delivery = { clientEvent: JSON.stringify(JSON.parse(message)) };
      else delivery = { attempt: decodeRendered(JSON.parse(message) as string[]).attempt };
    } catch (err) {
      this.log?.warn(`unreadable change on ${channel}: ${String(err)}`);
      return;
    }
    for (const listener of set) listener(delivery);
  }
}

/** The hub of an API process, on a subscriber connection of its own (MAX_STREAMS, STREAM_TIME_EVENT_SECONDS). */
export function createStreamHub(
  config: RedisLocation & Pick<Config, 'MAX_STREAMS' | 'STREAM_TIME_EVENT_SECONDS'>,
  log: Logger,
  name: string,
): StreamHub {
  const sub = createSubscriberRedis(config, name);
  sub.on('error', (err: Error) => log.debug(`redis (streams): ${err.message}`));
  return new StreamHub(sub, { maxStreams: config.MAX_STREAMS, timeEventMs: config.STREAM_TIME_EVENT_SECONDS * 1000 }, log);
}
