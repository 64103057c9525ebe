import pg from 'pg';

/** The PostgreSQL URL tests use (CI sets THINGSTEAD_TEST_DATABASE_URL). */
export const TEST_PG_URL =
  process.env.THINGSTEAD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * True when PostgreSQL answers. Unreachable: throws under CI=true, else prints a visible SKIP and returns false.
 */
export async function postgresAvailable(what: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    if (process.env.CI === 'true')
      throw new Error(`PostgreSQL required in CI but unreachable at ${TEST_PG_URL}`);
    console.warn(`SKIP: PostgreSQL unreachable at ${TEST_PG_URL}; ${what} skipped`);
    return false;
  }
}

/**
 * Create a throwaway schema and return a URL whose search_path points at it, plus a dropper.
 * @example const { url, drop } = await freshSchema('ts'); ...; await drop();
 */
export async function freshSchema(
  prefix: string,
): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const schema = `t_${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const sep = TEST_PG_URL.includes('?') ? '&' : '?';
  return {
    schema,
    url: `${TEST_PG_URL}${sep}options=-c%20search_path%3D${schema}`,
    async drop() {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}
