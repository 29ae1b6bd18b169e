// v7: half of each `sessions` page is left free (PostgreSQL fillfactor 50,
// was 80), so a session's end stays a HOT update under load. Every row is
// updated once, its end, within moments of its insert: at 80 a page of
// freshly inserted rows has room for the new versions of only a few of
// them, and the rest of the ends became ordinary updates, each writing an
// entry into all seven indexes of the table (measured: 33% of ends HOT at
// 80, 96% at 50, 2,000 sessions at concurrency 50). It applies to pages
// written from now on; `sessions` takes about twice the pages, a small
// part of the trail beside `events` and `contents`. SQLite has no such
// setting: nothing to do there.
export const v7Sqlite = ``;

export const v7Postgres = `
ALTER TABLE sessions SET (fillfactor = 50);
`;
