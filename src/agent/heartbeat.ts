// The tunnel's HTTP/2 PING keepalive, the same on both ends. A peer is dead
// when a PING goes unanswered for `timeoutMs` *and* nothing else arrived
// from it meanwhile. A busy tunnel is not a dead one:
// - under load the PING's answer queues behind megabytes of DATA frames, in
//   the peer's socket buffer and in ours, and arrives late while data keeps
//   flowing;
// - when this process's own event loop was blocked past the deadline, node
//   runs expired timers before it reads the sockets, so the answer that is
//   already waiting would be read only after the deadline had cut the tunnel.
// So the deadline first lets the loop read what is waiting (one turn), then
// counts bytes read from the socket since the PING: any means the peer is
// alive, and the deadline starts over.
import type http2 from 'node:http2';

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
}

/**
 * The defaults on both ends. The timeout is long because a busy peer is
 * silent for a while: a gateway taking a burst of 5,000 requests on two
 * cores spent more than 5 s (the earlier default) without a byte for the
 * tunnel, and a cut tunnel ends every stream on it. A peer that is gone is
 * seen at once from its socket closing; this is for one that hangs.
 */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 10_000, timeoutMs: 20_000 };

/** PINGs `session` every `intervalMs`; calls `dead` once if the peer stops answering and sending. Stops when the session closes. */
export function keepAlive(session: http2.Http2Session, { intervalMs, timeoutMs }: HeartbeatOptions, dead: () => void): void {
  let outstanding = false;
  let deadline: NodeJS.Timeout | undefined;
  let readAtCheck = 0;
  const bytesRead = (): number => session.socket?.bytesRead ?? 0;
  const gone = (): boolean => session.destroyed || session.closed;
  const declareDead = (): void => {
    clearInterval(timer);
    if (!session.destroyed) dead();
  };
  const check = (): void => {
    // Timers run before the sockets are read: let this turn of the loop read what is waiting first.
    setImmediate(() => {
      if (!outstanding || gone()) return;
      const read = bytesRead();
      if (read === readAtCheck) return declareDead();
      readAtCheck = read;
      deadline = setTimeout(check, timeoutMs);
    });
  };
  const timer = setInterval(() => {
    // One PING at a time: a late answer is waited for, not stacked up behind.
    if (outstanding || gone()) return;
    readAtCheck = bytesRead();
    let sent: boolean;
    try {
      sent = session.ping((err) => {
        outstanding = false;
        clearTimeout(deadline);
        if (err && !gone()) declareDead();
      });
    } catch {
      return; // the session went away between the check and the PING
    }
    if (!sent) return;
    outstanding = true;
    deadline = setTimeout(check, timeoutMs);
  }, intervalMs);
  timer.unref();
  session.once('close', () => {
    clearInterval(timer);
    clearTimeout(deadline);
  });
}
