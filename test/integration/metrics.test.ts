import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { doc } from '../helpers/docs.js';
import { it } from '../helpers/fixtures.js';
import { policyText } from '../helpers/policy-files.js';
import { until } from '../helpers/until.js';

/** One sample's value from the exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('counts reloads, watch events, heartbeats and requests, and shows the state the daemon holds', async ({ startServer, dir, sentinel, beater, listen }) => {
    // A server of its own: the test restarts it.
    const server = await startServer();
    const running = await sentinel({ servers: server.url, policies: dir, interval: '200ms', require: 'gateway' });
    await beater('gateway', 'g1', 200, server.url);
    const listener = await listen([], server.url);
    const scrape = async () => (await fetch(`http://127.0.0.1:${running.sentinel.httpAddress?.port}/metrics`)).text();
    await running.connected();
    await until(() => running.sentinel.monitor.aggregator.overall === 'healthy', 5000, 'healthy');
    let m = await scrape();
    const revision = running.sentinel.reloader.inForce?.revision;
    expect(sample(m, 'nachos_sentinel_reloads_total{outcome="published"}')).toBe(1);
    expect(sample(m, 'reloader_last_reload_successful')).toBe(1);
    expect(sample(m, 'reloader_last_reload_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(sample(m, `nachos_sentinel_policy_revision_info{revision="${revision}"}`)).toBe(1);
    expect(sample(m, 'nachos_sentinel_bus_connected')).toBe(1);
    expect(sample(m, 'nachos_sentinel_tracked_instances')).toBe(2);
    expect(sample(m, 'nachos_sentinel_health_status{status="healthy"}')).toBe(1);
    expect(sample(m, 'nachos_sentinel_component_status{component="gateway",role="required",status="healthy"}')).toBe(1);
    expect(sample(m, 'nachos_sentinel_policy_convergence_ratio')).toBe(1);
    expect(sample(m, 'nachos_sentinel_heartbeats_received_total')).toBeGreaterThan(0);
    expect(m).toMatch(/^process_cpu_user_seconds_total /m);
    expect(m).toMatch(/^nodejs_eventloop_lag_seconds /m);

    // A broken edit, then a fixed one: rejected, unsuccessful, then successful, with a latency observed.
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]\n');
    await until(async () => sample(await scrape(), 'reloader_last_reload_successful') === 0, 5000, 'the rejection');
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    await until(async () => sample(await scrape(), 'reloader_last_reload_successful') === 1, 5000, 'the recovery');
    m = await scrape();
    expect(sample(m, 'nachos_sentinel_reloads_total{outcome="rejected"}')).toBe(1);
    expect(sample(m, 'nachos_sentinel_reloads_total{outcome="published"}')).toBe(2);
    expect(sample(m, 'nachos_sentinel_watch_events_total{kind="change"}')).toBeGreaterThanOrEqual(2);
    expect(sample(m, 'nachos_sentinel_watch_bursts_total')).toBeGreaterThanOrEqual(2);
    expect(sample(m, 'nachos_sentinel_reload_latency_seconds_count')).toBe(1);
    expect(sample(m, 'nachos_sentinel_reload_latency_seconds_bucket{le="0.25"}')).toBe(1);

    // Garbage on the health subject is counted by reason; requests are counted by endpoint.
    listener.nc.publish(SUBJECTS.health, 'garbage');
    await listener.nc.request(SUBJECTS.healthStatus, '', { timeout: 1000 });
    await until(async () => sample(await scrape(), 'nachos_sentinel_heartbeats_rejected_total{reason="json"}') === 1, 5000, 'the count');
    m = await scrape();
    expect(sample(m, 'nachos_sentinel_requests_total{endpoint="health-status"}')).toBeGreaterThanOrEqual(1);

    // Every metric of this project's own is in the README's table.
    const readme = doc('docs/operating.md');
    const names = running.sentinel.metrics?.getMetricsAsArray().map((x) => x.name).filter((n) => /^(nachos_sentinel|reloader)_/.test(n)) ?? [];
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) expect(readme, name).toContain(`\`${name}`);

    // The bus goes away and comes back: connection state and reconnects follow.
    await server.restart();
    await until(async () => sample(await scrape(), 'nachos_sentinel_bus_reconnects_total') === 1, 10_000, 'the reconnect');
    expect(sample(await scrape(), 'nachos_sentinel_bus_connected')).toBe(1);
  });
});
