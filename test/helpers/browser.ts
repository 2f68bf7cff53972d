/** Headless Chromium for the browser tests: Debian's chromium, with no internet. */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumAvailable = existsSync(CHROMIUM);
/** CI installs chromium and sets AUTOPROX_REQUIRE_BROWSER=1: there the browser tests never skip. */
export const chromiumRequired = process.env.AUTOPROX_REQUIRE_BROWSER === '1';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

/** Aborts every request that leaves 127.0.0.1; returns the list of what was tried. */
export async function keepOnLoopback(page: Page): Promise<string[]> {
  const offsite: string[] = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== '127.0.0.1') {
      offsite.push(url.href);
      return route.abort();
    }
    return route.continue();
  });
  return offsite;
}
