import * as pgCloudflare from "pg-cloudflare";

type SocketFactory = (config: { ssl?: unknown }) => unknown;

/** What is used here of pg-cloudflare's socket (its types are those of the module outside workerd, which is empty). */
interface CloudflareSocketLike {
  write(data: Uint8Array | string, callback?: (error?: unknown) => void): unknown;
}
type CloudflareSocketClass = new (ssl: boolean) => CloudflareSocketLike;

/**
 * A socket for `pg` in a Worker that sends the messages written in one turn together. `pg`
 * writes each message of a query (Parse, Bind, Describe, Execute, Sync) on its own, and
 * pg-cloudflare's socket makes each one a send of its own on the Worker's TCP socket: a
 * tenth of a simple API request's CPU time in workerd. Outside workerd (Node), pg-cloudflare
 * exports nothing and `pg` keeps its own socket: undefined.
 */
export function batchingSocket(): SocketFactory | undefined {
  const Base = (pgCloudflare as unknown as { CloudflareSocket?: CloudflareSocketClass }).CloudflareSocket;
  if (!Base) return undefined;
  class BatchingSocket extends Base {
    private queued: Uint8Array[] = [];
    private callbacks: Array<(error?: unknown) => void> = [];
    private flushing = false;

    override write(data: Uint8Array | string, encodingOrCallback?: BufferEncoding | ((error?: unknown) => void), callback?: (error?: unknown) => void): true {
      const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      if (bytes.length) this.queued.push(bytes);
      if (done) this.callbacks.push(done);
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => this.flush());
      }
      return true;
    }

    private flush(): void {
      this.flushing = false;
      const chunks = this.queued;
      const callbacks = this.callbacks;
      this.queued = [];
      this.callbacks = [];
      const size = chunks.reduce((n, c) => n + c.length, 0);
      const all = new Uint8Array(size);
      let at = 0;
      for (const chunk of chunks) {
        all.set(chunk, at);
        at += chunk.length;
      }
      super.write(all, (error?: unknown) => {
        for (const cb of callbacks) cb(error);
      });
    }
  }
  return (config) => new BatchingSocket(!!config.ssl);
}
