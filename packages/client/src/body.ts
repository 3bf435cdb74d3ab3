/** A request body to stream: text, a Blob (`fs.openAsBlob`), a web stream or any async iterable of bytes (a Node Readable). */
export type Body = string | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

const encoder = new TextEncoder();

/** The body as a web stream, pulled chunk by chunk: a manifest of any size is never held in memory. */
export function toStream(body: Body): ReadableStream<Uint8Array> {
  if (typeof body === 'string') return new Blob([body]).stream();
  if (body instanceof Blob) return body.stream();
  if (body instanceof ReadableStream) return body;
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(typeof value === 'string' ? encoder.encode(value) : value);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}
