import { connect } from 'nats';

/** The NATS server tests use (CI has one on 127.0.0.1:4222). */
export const TEST_NATS_URL = process.env.THINGSTEAD_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** True when NATS answers. Unreachable: throws under CI=true, else prints a visible SKIP and returns false. */
export async function natsAvailable(what: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: TEST_NATS_URL, timeout: 1000 });
    await nc.close();
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`NATS required in CI but unreachable at ${TEST_NATS_URL}`);
    console.warn(`SKIP: NATS unreachable at ${TEST_NATS_URL}; ${what} skipped`);
    return false;
  }
}
