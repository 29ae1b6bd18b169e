// v6: open sessions are found by `sessions_instance` (instance_id) instead of
// the partial index `sessions_open` (instance_id WHERE state = 'open').
// Every session's end changes `state`, and a column in an index's predicate
// counts as indexed: on PostgreSQL that made every end a non-HOT update,
// writing a new entry into each of the table's seven indexes. Now the end
// changes no indexed column, and room left on each page (fillfactor 80)
// lets PostgreSQL keep the new row version on its page (a HOT update: no
// index entry at all). On SQLite the end no longer deletes from an index.
// Recovery (`openSessions`, rare: at start-up and when an instance died)
// reads a dead instance's sessions by instance and keeps the open ones.
// Building the index on a large trail takes a while, once, when upgrading.
export const v6Sqlite = `
DROP INDEX sessions_open;
CREATE INDEX sessions_instance ON sessions (instance_id);
`;

export const v6Postgres = `
DROP INDEX sessions_open;
CREATE INDEX sessions_instance ON sessions (instance_id);
ALTER TABLE sessions SET (fillfactor = 80);
`;
