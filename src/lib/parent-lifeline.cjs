'use strict';
/**
 * Preloaded (`--require`) into every TypeScript service the ServiceRunner starts (cli/service-runner.ts): the service
 * stops when the process that started it is gone, however it went.
 *
 * Services are leaders of their own process groups (so a terminal's Ctrl-C reaches only the job, which stops them in
 * order). The flip side: when the job itself is SIGKILLed (an OOM kill, `kill -9` of `npm start` or of a benchmark),
 * nothing relays the signal, and a signal-intake or trade worker would go on consuming signals and placing orders
 * with no one watching, holding the stack's ports. The runner gives each service the read end of a pipe as fd 3 and
 * never writes to it; the kernel closes the other end when the runner's process dies, for any reason. The service
 * then sees end-of-file and stops as if it had been sent SIGTERM: its own handler finishes what it holds (in-flight
 * activities, un-acked messages). If that takes longer than STOP_GRACE_MS, it exits anyway.
 *
 * Plain CommonJS, not TypeScript: Node passes its preload flags on to worker threads (the Temporal worker's workflow
 * thread), where tsx's hooks are not in place; there it does nothing (only the main thread watches the pipe).
 */
const net = require('node:net');
const { isMainThread } = require('node:worker_threads');

/** The fd the runner passes the pipe on (stdio index 3). */
const LIFELINE_FD = 3;
const STOP_GRACE_MS = 60_000;

if (isMainThread) {
  let parentGone = false;
  const onParentGone = () => {
    if (parentGone) return;
    parentGone = true;
    // The service's stdout and stderr are pipes to the dead process too: a write to them now fails with EPIPE,
    // and an unhandled stream error would end the process at once, before its graceful stop (pino's own
    // destination already ignores a broken pipe). What they carried is lost either way: its reader is gone.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    process.stderr.write(`parent-lifeline: the process that started ${process.pid} is gone; stopping (SIGTERM)\n`);
    setTimeout(() => process.exit(70), STOP_GRACE_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  try {
    const lifeline = new net.Socket({ fd: LIFELINE_FD, readable: true, writable: false });
    lifeline.on('data', () => undefined); // nothing is ever written; reading is what delivers end-of-file
    lifeline.once('end', onParentGone);
    lifeline.once('close', onParentGone);
    lifeline.once('error', onParentGone);
    lifeline.unref(); // the pipe alone never keeps a finished service alive
  } catch {
    // No pipe on fd 3 (preloaded by hand, not by the runner): nothing to watch.
  }
}
