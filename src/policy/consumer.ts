/**
 * Who reads the policy files a sidecar delivers: Nachos' gateway (the
 * default), whose loader reads only `*.yaml` and `*.yml`, or a subscriber on
 * the bus that reads the documents from the reload itself.
 */
export const CONSUMERS = ['nachos', 'bus'] as const;
export type Consumer = (typeof CONSUMERS)[number];

/** Whether `consumer` reads the delivered file `path` (a bus subscriber reads them all from the reload). */
export function consumerReads(consumer: Consumer, path: string): boolean {
  return consumer === 'bus' || /\.ya?ml$/.test(path.slice(path.lastIndexOf('/') + 1));
}
