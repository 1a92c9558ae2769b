const root = process.argv[2];
const { HealthAggregator } = await import(`${root}/src/health/aggregator.ts`);
const { FakeClock } = await import(`${root}/test/helpers/fake-clock.ts`);
const runs = Number(process.argv[3] ?? 100);
let bad = 0;
for (let r = 0; r < runs; r++) {
  const clock = new FakeClock();
  const transitions: any[] = [];
  const agg = new HealthAggregator({ clock, intervalMs: 1000, required: ['gateway'], optional: [], maxInstances: 10_000, onTransition: (t: any) => transitions.push(t) });
  agg.setConnected(true);
  const hb = (c: string, i: string) => agg.ingest({ status: 'healthy', component: c, instance: i, intervalMs: 60_000, state: 'running' });
  let forged = 0;
  for (let i = 0; i < 10_000; i++) hb('gateway', `forged-${forged++}`);
  for (let tick = 0; tick < 100; tick++) {
    if (tick % 10 === 0) agg.ingest({ status: 'healthy', component: 'gateway', instance: 'real', intervalMs: 1000, state: 'running' });
    for (let i = 0; i < 500; i++) hb('gateway', `forged-${forged++}`);
    clock.advance(100); agg.tick();
  }
  const gone = transitions.filter((t) => t.scope === 'instance' && t.instance === 'real' && t.to === 'gone').length;
  if (gone > 1) bad++;
}
console.log(`${root}: ${bad} of ${runs} runs displaced the real instance more than once`);
