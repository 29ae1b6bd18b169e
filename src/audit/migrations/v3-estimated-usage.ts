// v3: `sessions.estimated`, set when a session's token numbers were
// estimated from text because the model server reported none, so lists,
// usage reports and searches can tell counted tokens from estimates. Sessions
// recorded before it are filled in from their `session.end` events, the same
// fold `verify` applies, so verifying an upgraded trail finds no difference.
const estimatedColumn = (bool: string): string => `ALTER TABLE sessions ADD COLUMN estimated ${bool} NOT NULL DEFAULT 0;\n`;

export const v3Sqlite = `${estimatedColumn('integer')}
UPDATE sessions SET estimated = 1 WHERE sid IN (
  SELECT sid FROM events WHERE kind = 'session.end' AND json_extract(meta, '$.usage.estimated') = 1
);
`;

export const v3Postgres = `${estimatedColumn('smallint')}
UPDATE sessions SET estimated = 1 WHERE sid IN (
  SELECT sid FROM events WHERE kind = 'session.end' AND (meta::jsonb -> 'usage' ->> 'estimated') = 'true'
);
`;
