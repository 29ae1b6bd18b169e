// v2: the full-text index over stored prompts and answers (src/audit/search.ts).
// One entry per indexed event (prompt as received, as forwarded, each batch
// of the answer), so an entry goes with its event (redaction, deletion,
// retention). SQLite keys it by the session's sid and the event's ordinal
// (rowid = sid * 65536 + n: a search yields sids without a lookup);
// PostgreSQL by the event's seq, with the sid beside it.
//
// SQLite: a contentless FTS5 table: it keeps the index, not a copy of the
// text; `contentless_delete` lets a redaction remove one entry by rowid.
// PostgreSQL: the `simple` configuration (no stemming, any language) in a
// tsvector column with a GIN index; the text itself is not kept either.

export const v2Sqlite = `
CREATE VIRTUAL TABLE session_search USING fts5(text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
`;

export const v2Postgres = `
CREATE TABLE session_search (
  seq bigint PRIMARY KEY,
  sid bigint NOT NULL,
  doc tsvector NOT NULL
);
CREATE INDEX session_search_doc ON session_search USING gin (doc);
CREATE INDEX session_search_sid ON session_search (sid);
`;
