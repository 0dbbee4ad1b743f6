import { TARGETS } from '../../targets/profiles.js';
import { formatBytes, table } from '../table.js';

export function targetsCommand(a: { json?: boolean }): void {
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ targets: TARGETS })}\n`);
    return;
  }
  const rows = TARGETS.map((t) => [
    t.name, t.kind, t.cpu.value, t.cores.value, t.clockMHz.value, formatBytes(t.ramBytes.value),
    t.flashBytes.value === null ? '-' : formatBytes(t.flashBytes.value), t.simdBits.value,
    t.node ? `${t.node.version} ${t.node.arch}` : '-',
    `${formatBytes(t.budget.modelBytes)} / ${formatBytes(t.budget.arenaBytes)}`,
    t.machine ? `${t.machine.gemmGflopsLarge} GFLOP/s` : t.cyclesPerMac ? `${t.cyclesPerMac.value} cyc/MAC` : '-',
  ]);
  process.stdout.write(`${table(['target', 'kind', 'cpu', 'cores', 'MHz', 'RAM', 'flash', 'SIMD bits', 'node', 'model / arena budget', 'speed'], rows)}\n`);
  process.stdout.write('\nsources: factorlite targets --json (every figure carries its source; "estimate" marks those not measured on the device)\n');
}
