// Graceful shutdown on SIGINT/SIGTERM: the first signal drains, a second
// one exits at once.
export function onShutdownSignal(shutdown: (signal: string) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (stopping) process.exit(130);
      stopping = true;
      shutdown(signal).finally(resolve);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
