import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * How long, and how much, a client still sending a body nobody reads is read (and dropped) for:
 * enough for the bytes already in flight (socket buffers hold a few MB), not for a whole upload.
 */
const LINGER_MS = 2_000;
const LINGER_BYTES = 8 * 1024 * 1024;

/**
 * Answers sent before the request body was read to its end (a limit passed, a bad parameter)
 * close the connection: the rest of the body is not worth reading, and a half-read request on a
 * keep-alive socket would hold it, and the server's shutdown, open. But closing a socket that
 * still has unread bytes makes the kernel send a reset, and a reset can reach the client before
 * it has read the answer: it sees "EPIPE" or "socket hang up" instead of the 413 (1 run in 9 with
 * a 5 MB line). So the socket lingers, as nginx's lingering_close does: the answer is sent and the
 * write side closed (FIN), what the client still sends is read and dropped, and the socket is
 * destroyed once the client closes, or after LINGER_MS / LINGER_BYTES at the latest.
 */
export function closeAfterEarlyAnswers(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    if (request.raw.complete) return;
    void reply.header('connection', 'close');
    const socket = request.raw.socket;
    if (socket) linger(socket);
  });
}

function linger(socket: Socket): void {
  // Node ends a `Connection: close` socket with destroySoon() once the answer is written.
  socket.destroySoon = () => {
    if (socket.destroyed) return;
    socket.end();
    let dropped = 0;
    socket.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > LINGER_BYTES) socket.destroy();
    });
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
