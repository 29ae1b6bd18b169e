// v5: the full-text index moves out of the recording transaction. One entry
// per session (its prompt as received, as forwarded, and its whole answer),
// written in a later, batched transaction once the session has ended
// (`indexEnded` in each driver), so the write-ahead commit no longer pays for
// it. `search_head` is the seq of the last `session.end` whose session is
// indexed: everything after it is indexed by the next pass, which also runs
// at start-up, so a crash can delay indexing but never lose a session.
//
// Entries are keyed by the session's sid (SQLite: the FTS5 rowid). The v2
// per-event entries are dropped and every ended session is indexed again
// from its stored content, from seq 0, by the first passes after upgrading.

export const v5Sqlite = `
DROP TABLE session_search;
CREATE VIRTUAL TABLE session_search USING fts5(text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE search_head (id integer PRIMARY KEY CHECK (id = 1), seq integer NOT NULL);
INSERT INTO search_head (id, seq) VALUES (1, 0);
`;

export const v5Postgres = `
DROP TABLE session_search;
CREATE TABLE session_search (
  sid bigint PRIMARY KEY,
  doc tsvector NOT NULL
);
CREATE INDEX session_search_doc ON session_search USING gin (doc);
CREATE TABLE search_head (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
INSERT INTO search_head (id, seq) VALUES (1, 0);
`;
