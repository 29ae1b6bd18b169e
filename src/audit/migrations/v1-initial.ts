// v1: the chain (events + chain_head), content parts, the sessions
// projection, and recorder instance leases.
//
// Sessions are keyed by `sid`, the seq of their session.start event, not by
// the request ID: request IDs are random, and every index keyed by them
// dirties a different page per session, which the WAL (or PostgreSQL's)
// then writes out. Sequential keys keep a commit's writes on a few pages.
import { GENESIS_HASH } from '../chain.js';

const sessionColumns = (types: { bigint: string; bool: string }): string => `
  sid ${types.bigint} PRIMARY KEY,
  id text NOT NULL UNIQUE,
  received_at ${types.bigint} NOT NULL,
  issuer text NOT NULL,
  subject text NOT NULL,
  email text,
  groups_json text NOT NULL,
  client_ip text,
  user_agent text,
  connection text,
  model text NOT NULL,
  operation text NOT NULL,
  stream ${types.bool} NOT NULL,
  bodies ${types.bool} NOT NULL,
  instance_id text NOT NULL,
  state text NOT NULL,
  status integer,
  error_code text,
  prompt_tokens integer,
  completion_tokens integer,
  total_tokens integer,
  ttft_ms integer,
  latency_ms integer,
  ended_at ${types.bigint},
  blocked ${types.bool} NOT NULL DEFAULT 0,
  masked ${types.bool} NOT NULL DEFAULT 0,
  approved ${types.bool} NOT NULL DEFAULT 0,
  redacted ${types.bool} NOT NULL DEFAULT 0,
  legal_hold ${types.bool} NOT NULL DEFAULT 0`;

const common = (types: { bigint: string; bool: string; blob: string; withoutRowid: string }): string => `
CREATE TABLE chain_head (
  id integer PRIMARY KEY CHECK (id = 1),
  seq ${types.bigint} NOT NULL,
  hash text NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');

CREATE TABLE events (
  seq ${types.bigint} PRIMARY KEY,
  -- The session's sid; null for events about the trail itself.
  sid ${types.bigint},
  session_id text NOT NULL,
  n integer NOT NULL,
  kind text NOT NULL,
  at_ms ${types.bigint} NOT NULL,
  meta text NOT NULL,
  content_hash text,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  -- The first part of the event's content, inline: most content is one part.
  key_id text,
  nonce ${types.blob},
  content ${types.blob}
);
CREATE INDEX events_session ON events (sid, n);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_evidence ON events (seq) WHERE kind IN ('redaction', 'retention.delete', 'session.delete');

-- Parts after the first, for content longer than chunk_bytes.
CREATE TABLE contents (
  sid ${types.bigint} NOT NULL,
  n integer NOT NULL,
  part integer NOT NULL,
  key_id text,
  nonce ${types.blob},
  data ${types.blob} NOT NULL,
  PRIMARY KEY (sid, n, part)
);

CREATE TABLE sessions (${sessionColumns(types)}
);
CREATE INDEX sessions_received ON sessions (received_at, id);
CREATE INDEX sessions_subject ON sessions (subject, received_at);
CREATE INDEX sessions_email ON sessions (email, received_at);
CREATE INDEX sessions_connection ON sessions (connection, received_at);
CREATE INDEX sessions_open ON sessions (instance_id) WHERE state = 'open';

CREATE TABLE session_groups (
  group_name text NOT NULL,
  sid ${types.bigint} NOT NULL,
  PRIMARY KEY (group_name, sid)
)${types.withoutRowid};
CREATE INDEX session_groups_sid ON session_groups (sid);

CREATE TABLE recorder_instances (
  id text PRIMARY KEY,
  hostname text NOT NULL,
  pid integer NOT NULL,
  started_at ${types.bigint} NOT NULL,
  heartbeat_at ${types.bigint} NOT NULL,
  closed_at ${types.bigint}
);
`;

export const v1Sqlite = common({ bigint: 'integer', bool: 'integer', blob: 'blob', withoutRowid: ' WITHOUT ROWID' });
// smallint booleans keep the projection's 0/1 identical on both drivers.
export const v1Postgres = common({ bigint: 'bigint', bool: 'smallint', blob: 'bytea', withoutRowid: '' });
