// The PostgreSQL every storage test uses: the machine's, unless
// MODELGATE_TEST_PG_URL names another. Tests isolate themselves in schemas.
export const PG_URL = process.env.MODELGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
