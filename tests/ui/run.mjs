// run.mjs SCENARIO - one browser scenario against the running daemon; the
// .bats file (tests/integration/ui.bats) seeds the data and passes ids and
// tokens in the environment. Exit 0 only if every step held.
const name = process.argv[2];
const mod = await import(`./scenario_${name}.mjs`);
try {
  await mod.default();
  console.log(`scenario ${name}: passed`);
} catch (e) {
  console.error(`scenario ${name}: FAILED: ${e.stack || e}`);
  process.exit(1);
}
