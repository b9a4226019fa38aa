/**
 * How much of a request body the Worker reads off and drops when it answers before reading
 * it all; past it the body is left alone (and the connection closed after the answer).
 */
export const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Reads and drops up to `limit` more bytes; past it the stream is cancelled. workerd closes
 * a connection whose request body was not read to its end once the answer is out, and a
 * client that reuses it for its next request (undici does) finds it closed: reading off a
 * refused upload's rest keeps the connection good.
 */
export async function drainReader(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<void> {
  try {
    for (let read = 0; read <= limit; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away; nothing is left to drop.
  }
}

/**
 * The body as a stream that, when its reader cancels it (a refusal part-way), reads off the
 * rest up to DRAIN_LIMIT_BYTES instead of cancelling the request's body. `finish` does the
 * same at once (the one who refused need not wait for the cancel to arrive) and settles
 * when it is done; either way it happens once.
 */
export function drainingOnCancel(body: ReadableStream<Uint8Array>): { stream: ReadableStream<Uint8Array>; finish(): Promise<void> } {
  const reader = body.getReader();
  let drained: Promise<void> | undefined;
  const finish = () => (drained ??= drainReader(reader, DRAIN_LIMIT_BYTES));
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        const { done, value } = await reader.read();
        if (done) ctl.close();
        else ctl.enqueue(value);
      },
      cancel: finish,
    },
    { highWaterMark: 0 },
  );
  return { stream, finish };
}
