// The commands of the deploy path (targets, bundle, deploy), registered on the program in one call.
import type { Command } from 'commander';
import { targetsCommand } from './targets.js';

export function registerDeployCommands(p: Command): void {
  p.command('targets')
    .description('device profiles (Pi 3/4/5, Jetson Nano/Orin, Cortex-M4/M7, ATmega2560, this host), each figure with its source')
    .option('--json', 'print one JSON object on stdout')
    .action((opts) => targetsCommand(opts));
}
