// aedes-persistence-redis ships no types; this is the part the broker uses.
declare module 'aedes-persistence-redis' {
  interface RedisConnection {
    host?: string;
    port?: number;
  }
  /** An aedes persistence backed by Redis (opaque to us: aedes consumes it). */
  interface RedisPersistence {
    readonly __aedesPersistence: unique symbol;
  }
  export default function aedesPersistenceRedis(opts?: RedisConnection): RedisPersistence;
}
