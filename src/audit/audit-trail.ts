// The recording side of a running gateway: the recorder on the data path,
// the archive behind the sessions API, and the retention job. Opened before
// the gateway listens, closed after it has drained.
import type { Config } from '../config/schema.js';
import type { Logger } from '../ops/logger.js';
import type { ConnectionRecordingConfig } from './config.js';
import { Recorder, type StoreHealth } from './recorder.js';
import { RetentionJob } from './retention.js';
import { SessionArchive } from './sessions.js';
import { openStore, type ThreadHeap } from './store.js';

export class AuditTrail {
  private constructor(
    readonly recorder: Recorder,
    readonly archive: SessionArchive,
    private readonly retention: RetentionJob,
  ) {}

  static async open(config: Config, log: Logger, health?: StoreHealth): Promise<AuditTrail> {
    const connections = new Map<string, ConnectionRecordingConfig>(
      config.connections.flatMap((c) => (c.recording ? [[c.name, c.recording] as const] : [])),
    );
    const recorder = await Recorder.open(await openStore(config.storage, { thread: 'worker' }), config.recording, { connections, log, ...(health && { health }) });
    // Its own store handle, so API reads never queue behind recording commits.
    const archive = new SessionArchive(await openStore(config.storage, { thread: 'worker' }), config.recording, connections);
    return new AuditTrail(recorder, archive, new RetentionJob(archive, log).start());
  }

  /** After a burst: the recorder's and the archive's store threads give back what they held for it, one after the other. */
  async reclaimMemory(): Promise<Array<ThreadHeap | void>> {
    const heaps: Array<ThreadHeap | void> = [];
    for (const store of [this.recorder.store, this.archive.store]) heaps.push(await store.reclaimMemory?.());
    return heaps;
  }

  async close(): Promise<void> {
    await this.retention.stop();
    await this.recorder.close();
    await this.archive.store.close();
  }
}
