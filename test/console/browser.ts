import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Platform } from '../../src/platform/index.js';

/**
 * Helpers for the console's end-to-end tests: the console build (made when missing), Debian's Chromium
 * driven by playwright-core, sign-in, and screenshots (always into a temporary directory; copied to
 * docs/images/ when UPDATE_SCREENSHOTS=1).
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shotsDir = mkdtempSync(join(tmpdir(), 'console-shots-'));

/** Build the console with Vite when dist/console/web is missing or older than its sources. */
export async function ensureConsoleBuilt(): Promise<void> {
  const index = join(root, 'dist', 'console', 'web', 'index.html');
  const newest = (dir: string): number => {
    let t = 0;
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      const s = statSync(p);
      t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
    }
    return t;
  };
  // Under CI `npm test` has just built it (pretest): never rebuild there, since a rebuild empties the
  // directory while other test files' platforms read it.
  if (
    existsSync(index) &&
    (process.env.CI || statSync(index).mtimeMs >= newest(join(root, 'console', 'src')))
  )
    return;
  const { build } = await import('vite');
  await build({ configFile: join(root, 'console', 'vite.config.ts'), logLevel: 'warn' });
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** The admin key from the platform's credentials file. */
export function adminKey(platform: Platform): { id: string; secret: string } {
  const text = readFileSync(platform.endpoints.credentialsFile!, 'utf8');
  return {
    id: /aws_access_key_id = (\S+)/.exec(text)![1]!,
    secret: /aws_secret_access_key = (\S+)/.exec(text)![1]!,
  };
}

/** Open the console and sign in through its form; resolves once the overview is shown. */
export async function signIn(
  browser: Browser,
  platform: Platform,
  key: { id: string; secret: string },
): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on('pageerror', (err) => console.error('[console page error]', err.message));
  await page.goto(`${platform.endpoints.http}/`);
  await page.fill('input[name=accessKeyId]', key.id);
  await page.fill('input[name=secretAccessKey]', key.secret);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=who]');
  return page;
}

/** Screenshot into the temporary directory; with UPDATE_SCREENSHOTS=1 also into docs/images/. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = join(shotsDir, `console-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(join(root, 'docs', 'images'), { recursive: true });
    copyFileSync(file, join(root, 'docs', 'images', `console-${name}.png`));
  }
  return file;
}
