// A gateway process that dies mid-stream: it records the start of a streamed
// session and two chunks, says so on stdout, and waits to be SIGKILLed.
import type { StorageConfig } from '../../src/audit/config.js';
import { Recorder } from '../../src/audit/recorder.js';
import { openStore } from '../../src/audit/store.js';
import { chatBody, principal, recording, sseChunk } from './fixtures.js';

const { storage, sessionId } = JSON.parse(process.argv[2]!) as { storage: StorageConfig; sessionId: string };
const store = await openStore(storage, { thread: 'worker' });
const recorder = await Recorder.open(store, recording());
const writer = await recorder.beginSession({
  id: sessionId,
  receivedAt: Date.now(),
  principal: principal('crash-victim'),
  connection: 'local',
  model: 'demo-chat',
  operation: 'chat',
  stream: true,
  requestBody: chatBody('Tell me a long story'),
  forwardedBody: chatBody('Tell me a long story'),
});
writer.chunk(sseChunk('Once'), 12);
writer.chunk(sseChunk(' upon'), 31);
await writer.flush();
process.stdout.write('recorded\n');
setInterval(() => {}, 1000);
