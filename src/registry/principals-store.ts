import type { Database } from '../store/index.js';
import type { Page } from './store-sql.js';

/** Principals (certificate ARNs, Cognito ids) attached to things (`reg_thing_principals`). */

export interface PrincipalStore {
  /** Attach, or change the type of an existing attachment. */
  attachPrincipal(thing: string, principal: string, type: string): Promise<void>;
  detachPrincipal(thing: string, principal: string): Promise<boolean>;
  principalsOfThing(thing: string, page: Page): Promise<Array<{ principal: string; type: string }>>;
  thingsOfPrincipal(principal: string, page: Page): Promise<Array<{ thing: string; type: string }>>;
}

export function principalStore(db: Database): PrincipalStore {
  return {
    async attachPrincipal(thing, principal, type) {
      await db.run(
        'INSERT INTO reg_thing_principals (thing_name, principal, principal_type) VALUES ($1, $2, $3) ' +
          'ON CONFLICT (thing_name, principal) DO UPDATE SET principal_type = excluded.principal_type',
        [thing, principal, type],
      );
    },
    async detachPrincipal(thing, principal) {
      return (
        (await db.run('DELETE FROM reg_thing_principals WHERE thing_name = $1 AND principal = $2', [
          thing,
          principal,
        ])) > 0
      );
    },
    async principalsOfThing(thing, p) {
      const rows = await db.query<{ principal: string; principal_type: string }>(
        'SELECT principal, principal_type FROM reg_thing_principals WHERE thing_name = $1 AND principal > $2 ORDER BY principal LIMIT $3',
        [thing, p.after ?? '', p.limit],
      );
      return rows.map((r) => ({ principal: r.principal, type: r.principal_type }));
    },
    async thingsOfPrincipal(principal, p) {
      const rows = await db.query<{ thing_name: string; principal_type: string }>(
        'SELECT thing_name, principal_type FROM reg_thing_principals WHERE principal = $1 AND thing_name > $2 ORDER BY thing_name LIMIT $3',
        [principal, p.after ?? '', p.limit],
      );
      return rows.map((r) => ({ thing: r.thing_name, type: r.principal_type }));
    },
  };
}
