import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { it } from '../helpers/fixtures.js';

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH points elsewhere if needed. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where the suite leaves its screenshot. */
export const SCREENSHOT = path.resolve(import.meta.dirname, '../../test-results/status-page.png');

describe('the live status page, in a real headless browser', () => {
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Headless on a machine without a network: no sandbox (root), and none of the background traffic.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a real daemon, follows a component going stale and a rejected set, and fetches nothing from outside', async ({ dir, defer, sentinel, beater }) => {
    const running = await sentinel({ policies: dir, interval: '200ms', require: 'gateway,sentinel', optional: 'slack' });
    const gateway = await beater('gateway', 'gateway-1', 200);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    defer(() => page.close());
    const origin = `http://127.0.0.1:${running.sentinel.httpAddress?.port}`;
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await running.connected();
    await page.goto(`${origin}/`);
    const statusOf = (component: string) => page.locator(`[data-component="${component}"] .badge`);
    await expect.poll(() => statusOf('gateway').textContent(), { timeout: 10_000 }).toBe('healthy');
    await expect.poll(() => page.locator('#overall').textContent(), { timeout: 10_000 }).toBe('degraded');
    expect(await page.locator('#reason').textContent()).toBe('optional slack is missing (has not reported)');
    const revision = running.sentinel.reloader.inForce?.revision ?? '';
    expect(await page.locator('#revision').textContent()).toBe(revision.slice(0, 12));
    expect(await page.locator('#convergence').textContent()).toMatch(/^1 of 1 on revision/);
    // The set's warnings, as everywhere else: a TOML file, which a Nachos gateway never reads.
    expect(await page.locator('#policy-warnings').textContent()).toBe("a.toml warning: Nachos' loader reads only *.yaml and *.yml: the rule in a.toml is not in force in a Nachos gateway");

    // A broken edit: the page shows the rejected set and its errors; the revision in force stays.
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = {}\neffect = "perhaps"\n');
    await expect.poll(() => page.locator('#rejection-errors').textContent(), { timeout: 10_000 }).toContain('b.toml:6');

    // The gateway dies: its instance goes suspect, then stale, and the component missing.
    await gateway.crash();
    const instance = page.locator('[data-instance="gateway-1"] .status');
    await expect.poll(() => instance.textContent(), { timeout: 10_000 }).toBe('stale');
    await expect.poll(() => statusOf('gateway').textContent(), { timeout: 10_000 }).toBe('missing');
    await expect.poll(() => page.locator('#overall').textContent(), { timeout: 10_000 }).toBe('unhealthy');
    expect(await page.locator('#transitions').textContent()).toContain('gateway/gateway-1');

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(requests.length).toBeGreaterThan(0);
    for (const url of requests) expect(url.startsWith(`${origin}/`)).toBe(true);
  });
});
