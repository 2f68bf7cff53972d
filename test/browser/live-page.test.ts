/**
 * The live page in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * with no internet: a session moves from UDP_WAITING to UDP_ESTABLISHED when its peer comes up,
 * in the table, in the details and on the statechart diagram.
 * CI installs chromium and sets AUTOPROX_REQUIRE_BROWSER=1, so there it is never skipped.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { chromiumAvailable, chromiumRequired, keepOnLoopback, launchChromium } from '../helpers/browser.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';

/** Written when AUTOPROX_SCREENSHOT=1, for the README. */
const SCREENSHOT = fileURLToPath(new URL('../../visualizations/live-page.png', import.meta.url));

describe.runIf(chromiumAvailable || chromiumRequired)('the live page in headless Chromium', () => {
  let browser: Browser;
  let s: InProcessServer;
  let peer: ScriptedPeer;
  let client: TestClient;
  let admin: string;

  beforeAll(async () => {
    browser = await launchChromium();
    s = await startInProcess({ 'punch-ms': '50', 'heartbeat-ms': '200', 'peer-timeout-ms': '5000', 'fallback-ms': '300' });
    admin = await new SignJWT({ apx_admin: true }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('10m').sign(new TextEncoder().encode(TEST_SECRET));
    const psk = randomBytes(32);
    peer = await ScriptedPeer.start('ipv4', psk);
    peer.autoReply = false; // the peer comes up during the test
    client = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token: await mintToken(TEST_SECRET, 'alice', 600) });
    await client.waitForStatus('UDP_WAITING');
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await client?.close();
    peer?.stop();
    await s?.close();
  });

  it('logs in with an admin token and shows the session go from UDP_WAITING to UDP_ESTABLISHED', async () => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    const offsite = await keepOnLoopback(page);
    await page.goto(s.url + '/');
    await page.fill('#token', admin);
    await page.click('button');

    const id = client.statuses[0]!.session;
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    await page.locator('#details[data-state="udp_waiting.ipv4"]').waitFor({ timeout: 10_000 });
    await page.locator('#diagram svg').waitFor();
    expect(await activeStates(page)).toEqual(expect.arrayContaining(['session.udp_waiting', 'session.udp_waiting.ipv4']));
    expect(await row.textContent()).toContain('udp_waiting.ipv4');

    peer.autoReply = true;
    await page.locator('#details[data-state="udp_established"]').waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('udp_established');
    expect(await page.locator('dd[data-field="peer"]').textContent()).toBe(`127.0.0.1:${peer.endpoint.port}`);
    expect(await page.locator('dd[data-field="rtt"]').textContent()).toMatch(/^\d+(\.\d+)? ms$/);
    const active = await activeStates(page);
    expect(active).toEqual(expect.arrayContaining(['session.udp_established']));
    expect(active.some((id) => id.startsWith('session.udp_waiting'))).toBe(false);
    expect(active).not.toContain('session.udp_waiting');
    expect(offsite).toEqual([]); // nothing from the internet

    client.send(Buffer.from('bytes for the counters'));
    await page.locator('dd[data-field="bytes in / out"]', { hasText: '22 B' }).waitFor({ timeout: 5000 });
    // Its RTT and throughput over the last minutes: sparklines drawn from the page's own samples.
    for (const kind of ['rtt', 'throughput']) {
      await row.locator(`svg.spark[data-kind="${kind}"] polyline`).waitFor({ timeout: 10_000 });
      await page.locator(`#details svg.spark[data-kind="${kind}"] polyline`).waitFor({ timeout: 10_000 });
    }
    const points = await row.locator('svg.spark[data-kind="rtt"] polyline').getAttribute('points');
    expect(points!.split(' ').length).toBeGreaterThanOrEqual(2);
    if (process.env.AUTOPROX_SCREENSHOT === '1') await page.screenshot({ path: SCREENSHOT });
    await page.close();
  });

  it('tells a person whose token is not an admin token why', async () => {
    const page = await browser.newPage();
    await page.goto(s.url + '/');
    await page.fill('#token', await mintToken(TEST_SECRET, 'alice', 600));
    await page.click('button');
    await page.locator('#error', { hasText: 'apx_admin' }).waitFor({ timeout: 10_000 });
    // The table says so too, and how to get an admin token, instead of "no sessions".
    const table = page.locator('#sessions');
    await table.locator('#not-authorised').waitFor({ timeout: 10_000 });
    expect(await table.textContent()).toMatch(/^not authorised: this needs a token with the apx_admin: true claim\. Get an admin token with: autoprox token --sub ops --admin/);
    expect(await table.textContent()).not.toContain('no live sessions');
    await page.close();
  });

  it('says "not authorised" for a token the server refuses (401, another secret)', async () => {
    const page = await browser.newPage();
    await page.goto(s.url + '/');
    await page.fill('#token', await mintToken('another-secret-0123456789-0123456789', 'ops', 600, new Date(), { apx_admin: true }));
    await page.click('button');
    await page.locator('#sessions #not-authorised', { hasText: 'signature does not verify' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#sessions').textContent()).toMatch(/^not authorised: .*npm start/);
    await page.close();
  });

  it.each([1400, 1024, 700])('fits a window %i px wide: nothing cut off, the table scrolls inside its box', async (width) => {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(s.url + '/?access_token=' + admin);
    await page.locator(`tr[data-id="${client.statuses[0]!.session}"]`).waitFor({ timeout: 10_000 });
    const viewport = page.viewportSize()!.width;
    const pageWidth = await page.$eval('html', (html) => html.scrollWidth);
    const rights = await page.$$eval('main > section, .table-wrap', (boxes) => boxes.map((box) => box.getBoundingClientRect().right));
    const overflow = await page.$eval('.table-wrap', (wrap) => wrap.ownerDocument.defaultView.getComputedStyle(wrap).overflowX);
    expect(pageWidth).toBeLessThanOrEqual(viewport);
    expect(rights).toHaveLength(3);
    for (const right of rights) expect(right).toBeLessThanOrEqual(viewport);
    expect(overflow).toBe('auto');
    await page.close();
  });
});

async function activeStates(page: import('playwright-core').Page): Promise<string[]> {
  return page.$$eval('#diagram g.active > title', (titles) => titles.map((t) => (t.textContent ?? '').replace(/^cluster /, '')));
}
