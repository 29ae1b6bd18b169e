// v4: `sessions.flagged`, set when a guardrail flagged the session (action
// `flag`), so sessions can be filtered by every decision the issue names:
// blocked, masked, approved, flagged. Sessions recorded before it are filled
// in from their decision events, the same fold `verify` applies.
const flaggedColumn = (bool: string): string => `ALTER TABLE sessions ADD COLUMN flagged ${bool} NOT NULL DEFAULT 0;\n`;

export const v4Sqlite = `${flaggedColumn('integer')}
UPDATE sessions SET flagged = 1 WHERE sid IN (
  SELECT sid FROM events WHERE kind = 'decision' AND json_extract(meta, '$.action') = 'flag'
);
`;

export const v4Postgres = `${flaggedColumn('smallint')}
UPDATE sessions SET flagged = 1 WHERE sid IN (
  SELECT sid FROM events WHERE kind = 'decision' AND (meta::jsonb ->> 'action') = 'flag'
);
`;
