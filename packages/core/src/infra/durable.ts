import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';

export interface ReplicationPolicy {
  /** REDIS_WAIT_REPLICAS: replicas that must hold a write before it is acknowledged; 0 = no wait. */
  replicas: number;
  /** REDIS_WAIT_TIMEOUT_MS: the longest one `WAIT` blocks. */
  timeoutMs: number;
}

/**
 * Acknowledged means replicated. Replication is asynchronous: a primary answers a write before any
 * replica has it, and if it dies then, the replica promoted in its place never had the write (a
 * 202 for a job that does not exist, a charge that vanished). `durable(write)` runs the write,
 * then `WAIT replicas timeout`, and answers only when that many replicas acknowledged it; else it
 * throws `REDIS_NOT_REPLICATED` (retryable: a 503 with Retry-After over HTTP, a retry of a
 * worker's step, both safe because every acknowledged write is idempotent when redone).
 *
 * Why on the same connection. `WAIT` waits for the replication offset of the *calling client's*
 * last write, not the server's: a WAIT on another connection that wrote nothing waits for nothing
 * and returns at once. So it is sent on the connection the write went through: the services'
 * connection, which every store, the ledger, the budgets and the BullMQ queues of the services
 * share (BullMQ uses a Queue's ioredis instance as it is; only a Worker's blocking connection is a
 * duplicate, and no acknowledged write goes through a Worker's connection). A write done on any
 * other connection would not be covered, and is not passed through here.
 *
 * Why grouped. A client waiting in `WAIT` is blocked: the commands behind it on that connection
 * wait too. So concurrent durable writes share WAITs: at most one is in flight per connection,
 * and every write answered while it runs joins the next one (its offset is covered by a WAIT
 * sent after its reply). With healthy replicas a WAIT is one replication round trip; with a
 * stalled replica, every request on that connection waits at most about two timeouts and then
 * fails (retryable), which is the truthful answer.
 *
 * Why the connection generation. A WAIT answered by a different server than the one that took the
 * write proves nothing: a reconnect (to the promoted replica, after a failover) gives the client a
 * new connection whose last write offset is 0, so the WAIT there returns every replica at once.
 * Any close or ready of the connection between the start of the write and the WAIT's answer makes
 * the write unproven: retryable as well.
 */
export class Durability {
  private readonly waiters = new WeakMap<Redis, ReplicaWaiter>();

  constructor(readonly policy: ReplicationPolicy) {}

  get enabled(): boolean {
    return this.policy.replicas > 0;
  }

  /** Run `write` on `redis`, and answer once `policy.replicas` replicas hold what it wrote. */
  async run<T>(redis: Redis, write: () => Promise<T>): Promise<T> {
    if (!this.enabled) return write();
    const waiter = this.waiterOf(redis);
    const generation = waiter.generation;
    const result = await write();
    await waiter.wait(generation);
    return result;
  }

  private waiterOf(redis: Redis): ReplicaWaiter {
    let waiter = this.waiters.get(redis);
    if (!waiter) {
      waiter = new ReplicaWaiter(redis, this.policy);
      this.waiters.set(redis, waiter);
    }
    return waiter;
  }
}

interface Pending {
  generation: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** One connection's WAITs: at most one in flight, the writes answered meanwhile share the next. */
class ReplicaWaiter {
  /** Bumped on every close and ready of the connection (see Durability: a reconnect proves nothing). */
  generation = 0;
  private queue: Pending[] = [];
  private inFlight = false;

  constructor(
    private readonly redis: Redis,
    private readonly policy: ReplicationPolicy,
  ) {
    const bump = () => {
      this.generation++;
    };
    redis.on('close', bump);
    redis.on('ready', bump);
  }

  wait(generation: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ generation, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.inFlight = true;
    const { replicas, timeoutMs } = this.policy;
    (this.redis.call('WAIT', replicas, timeoutMs) as Promise<number>)
      .then(
        (acked) => {
          for (const p of batch) {
            if (p.generation !== this.generation) p.reject(notReplicated('the connection changed', acked));
            else if (acked < replicas) p.reject(notReplicated(`${acked} of ${replicas} replicas`, acked));
            else p.resolve();
          }
        },
        (err: Error) => {
          for (const p of batch) p.reject(notReplicated(err.message, undefined, err));
        },
      )
      .finally(() => {
        this.inFlight = false;
        this.pump();
      });
  }
}

function notReplicated(why: string, acked: number | undefined, cause?: unknown): AppError {
  return new AppError(
    'REDIS_NOT_REPLICATED',
    `the write was not confirmed on enough replicas (${why}); retry`,
    {
      statusCode: 503,
      retryable: true,
      ...(cause === undefined ? {} : { cause }),
      ...(acked === undefined ? {} : { details: { replicas_acknowledged: acked } }),
    },
  );
}
