// The commands of the deploy path (targets, bundle, deploy), registered on the program in one call.
import type { Command } from 'commander';
import { bundleCommand } from './bundle.js';
import { targetsCommand } from './targets.js';

export function registerDeployCommands(p: Command): void {
  p.command('targets')
    .description('device profiles (Pi 3/4/5, Jetson Nano/Orin, Cortex-M4/M7, ATmega2560, this host), each figure with its source')
    .option('--json', 'print one JSON object on stdout')
    .action((opts) => targetsCommand(opts));

  p.command('bundle')
    .description('a folder to copy to a Pi or a Jetson: the model, the runtime as JavaScript + WebAssembly, a launcher (node dir/run.mjs --input x.npy)')
    .argument('<model>', 'model.flm')
    .requiredOption('--target <name>', 'a Node target of factorlite targets (pi3, pi4, pi5, jetson-nano, jetson-orin, host)')
    .requiredOption('-o, --output <dir>', 'output folder (new or empty)')
    .option('--margin <F>', 'fraction of the target budgets kept free (default 0.1)')
    .option('--force', 'replace a non-empty output folder')
    .option('--json', 'print one JSON object on stdout')
    .action((model, opts) => bundleCommand(model, opts));
}
