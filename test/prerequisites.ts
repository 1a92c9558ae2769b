/**
 * The suite's global setup: before anything runs, the programs it drives
 * from the outside must be there (`npm test` checks, and installs them where
 * it can, before it builds: scripts/prerequisites.mjs; a direct `vitest run`
 * is checked here), and what is optional is said.
 */
export default async function setup(): Promise<() => void> {
  const { missingPrograms, installCommand } = await import('../scripts/prerequisites.mjs');
  const missing = missingPrograms();
  if (missing.length > 0) {
    const lines = missing.map((p) => `  ${p.name} (${p.why})`);
    throw new Error(`the suite needs programs that are not installed:\n${lines.join('\n')}\ninstall them with: ${installCommand(missing)}`);
  }
  // What is optional is said at the start and again in the summary: the tests that run Nachos' own code.
  const nachos = process.env.NACHOS_REPO
    ? `Nachos' own code: from NACHOS_REPO=${process.env.NACHOS_REPO}`
    : "Nachos' own code: NACHOS_REPO is not set, so the tests that run Nachos' PolicyLoader, validator and health server are SKIPPED (set it to a checkout or bare git directory of Nacho-Labs-LLC/nachos)";
  process.stdout.write(`${nachos}\n`);
  return () => process.stdout.write(`${nachos}\n`);
}
