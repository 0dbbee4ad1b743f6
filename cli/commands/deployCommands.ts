// The commands of the deploy path (targets, bundle, deploy), registered on the program in one call.
// Each command's module is loaded by its action only (see cli/main.ts).
import type { Command } from 'commander';

export function registerDeployCommands(p: Command): void {
  p.command('targets')
    .description('device profiles (Pi 3/4/5, Jetson Nano/Orin, Cortex-M4/M7, ATmega2560, this host), each figure with its source')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts) => (await import('./targets.js')).targetsCommand(opts));

  p.command('bundle')
    .description('a folder to copy to a Pi or a Jetson: the model, the runtime as JavaScript + WebAssembly, a launcher (node dir/run.mjs --input x.npy)')
    .argument('<model>', 'model.flm')
    .requiredOption('--target <name>', 'a Node target of factorlite targets (pi3, pi4, pi5, jetson-nano, jetson-orin, host)')
    .requiredOption('-o, --output <dir>', 'output folder (new or empty)')
    .option('--margin <F>', 'fraction of the target budgets kept free (default 0.1)')
    .option('--force', 'replace a non-empty output folder')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await import('./bundle.js')).bundleCommand(model, opts));

  p.command('deploy')
    .description('copy a bundle to a Pi or a Jetson over SSH, check its Node, run a smoke inference there and compare with this machine')
    .argument('<model>', 'model.flm')
    .requiredOption('--target <name>', 'a Node target of factorlite targets')
    .requiredOption('--host <user@host>', 'the device')
    .option('--key <file>', 'private key (default ~/.ssh/id_ed25519)')
    .option('--port <P>', 'SSH port', '22')
    .option('--node <cmd>', 'the node command on the device (default: node)')
    .option('--dir <path>', 'folder on the device (default factorlite/<target>-<model hash>)')
    .option('--kernels <k>', 'kernels of the smoke inference: wasm-simd | reference', 'wasm-simd')
    .option('--hil', 'then compare over a data set (not built yet)')
    .option('--data <set>', 'data set for --hil')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await import('./deploy.js')).deployCommand(model, opts));
}
