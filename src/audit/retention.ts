// The background retention job: every `sweep_interval`, delete expired
// sessions in small batches. One sweep at a time; a failed sweep is logged
// and retried at the next tick.
import type { Logger } from '../ops/logger.js';
import type { SessionArchive } from './sessions.js';

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly archive: SessionArchive,
    private readonly log?: Logger,
  ) {}

  start(): this {
    const interval = this.archive.recording.retention.sweep_interval;
    if (this.timer || interval <= 0) return this;
    this.timer = setInterval(() => void this.sweep(), interval);
    this.timer.unref();
    return this;
  }

  /** Runs one sweep now (or joins the one running). */
  sweep(): Promise<void> {
    this.running ??= this.archive
      .sweepRetention()
      .then(
        ({ deleted, batches }) => {
          if (deleted > 0) this.log?.info({ deleted, batches }, 'retention deleted expired sessions');
        },
        (err: unknown) => this.log?.error({ err: (err as Error).message }, 'retention sweep failed; retrying at the next interval'),
      )
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
