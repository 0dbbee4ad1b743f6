// factorlite command line. Results go to stdout (a table, or one JSON object with --json);
// progress and logs go to stderr; any failure is one line on stderr and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { registerDeployCommands } from './commands/deployCommands.js';
import { cliCode, CliError } from './errors.js';
import { VERSION } from './version.js';
import type * as cpMethod from '../converter/methods/cp.js';

// Each command's module, with the converter, runtime or trainer it pulls in, is loaded by the
// command's action only: `factorlite --help` or a bad argument loads none, and one command loads
// what it uses (the kernels are loaded by the preAction hook below, before any action runs).
const commands = {
  bench: () => import('./commands/bench.js'),
  convert: () => import('./commands/convert.js'),
  convertDecouple: () => import('./commands/convertDecouple.js'),
  demo: () => import('./commands/demo.js'),
  eval: () => import('./commands/evalCmd.js'),
  finetune: () => import('./commands/finetune.js'),
  hil: () => import('./commands/hil.js'),
  explain: () => import('./commands/explain.js'),
  export: () => import('./commands/export.js'),
  inspect: () => import('./commands/inspect.js'),
  run: () => import('./commands/run.js'),
  sweep: () => import('./commands/sweep.js'),
  worker: () => import('./commands/worker.js'),
  report: () => import('./commands/report.js'),
  train: () => import('./commands/train.js'),
};

/** The kind of CP-decomposed convolutions in a .flm, for one string of the help: CP_KIND of
 * converter/methods/cp.ts, whose module is not loaded here; its literal type makes the typecheck fail
 * if the two differ. */
export const HELP_CP_KIND: typeof cpMethod.CP_KIND = 'cp_conv2d';

function program(): Command {
  const p = new Command('factorlite')
    .description('compress neural networks by tensor decomposition and run the factors on small machines')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  p.command('convert')
    .description('import an ONNX model, factorise its layers, write a factor-only .flm')
    .argument('<model>', 'model.onnx (or a .flm to re-compress)')
    .requiredOption('-o, --output <file>', 'output .flm')
    .option('--method <m>', 'auto|none|tucker|cp|tt|tr|svd|rcp|rtk|rtt|rtr|adtn|decouple (adtn: dense layers, and conv kernels where the fit beats Tucker-2 at equal size, as deep tensor networks of local gates, depth = rank; decouple: dense → activation → dense pairs become flexible-activation layers)', 'auto')
    .option('--neurons <r>', 'with --method decouple: flexible neurons (branches) per replaced pair')
    .option('--basis <b>', 'with --method decouple: each branch\'s activation, poly:D (degree D, 1..16) or bspline:K (K cubic B-splines, 4..16); default poly:3')
    .option('--samples <N>', 'with --method decouple: inputs the fit samples from the data (default 1000)')
    .option('--ratio <R>', 'whole-model parameter compression target, spread over layers by sensitivity')
    .option('--prefer <p>', "with --ratio: accuracy (default) or speed: among allocations that reach the ratio, the one with the fewest multiply-adds (priced by the runtime's cost model) whose calibration error stays comparable")
    .option('--energy <E>', "keep this fraction of each layer's spectral energy")
    .option('--ranks <file>', 'JSON file: layer name -> rank(s)')
    .option('--quant <q>', 'f32|f16|int8|int8-channel|int8-tensor for weights and factors (int8 = int8-channel: one scale per row of axis 0); int8-full: int8 activations too, calibrated on --calib DATA (docs/FORMAT.md)', 'f32')
    .option('--round-ranks <m>', 'round every chosen rank to a multiple of m (4 or 8 suit the SIMD kernels); with --ratio, rounds down where rounding up would break the budget')
    .option('--calib <data>', 'calibration inputs: fashion-mnist | mnist | IDX folder | x.npy; 256 for the rank search, 256 held out for the check (default: the --finetune data, else synthetic)')
    .option('--finetune <data>', 'fine-tune by distillation from the input model on this data set (fashion-mnist | mnist | IDX folder | x.npy with --labels), before quantisation')
    .option('--labels <y.npy>', 'class ids for --finetune x.npy')
    .option('--epochs <N>', 'fine-tuning epochs with --finetune (default 1)')
    .option('--phases <N>', 'the three-phase recipe: 1 decompose only; 2 then train each factorised layer to reproduce the source there (block-wise, needs --finetune); 3 then distil end to end')
    .option('--block-steps <N>', 'steps of the block-wise phase with --phases 2|3 (default 300)')
    .option('--target <name>', 'fit a device of factorlite targets: picks ratio and dtype so model and arena fit its budgets, or refuses with the numbers')
    .option('--latency-budget <MS>', "with --target: the predicted latency per sample must be within MS (the profile's cost model)")
    .option('--margin <F>', 'with --target: fraction of each budget kept free (default 0.1)')
    .option('--search-seconds <S>', "bound auto's measured search: after S CPU seconds, the single-method plans not yet tried are skipped (default 60)")
    .option('--arena <bytes>', "the device's arena (491520 or 480K): each layer takes a form whose firmware scratch fits beside the activations live there; refuses, naming the layer and the bytes, when nothing fits")
    .option('--min-agreement <A>', 'fail unless the result agrees with the source on at least A of the held-out calibration samples (0.9 or 90%)')
    .option('--correct', "always keep the per-channel output correction (each factorised layer's output channels matched in mean and spread to the source's on the calibration data); by default it is tried with --calib and kept when it brings the result closer to the source")
    .option('--no-correct', 'do not try the per-channel output correction')
    .option('--hidden-bias <b>', 'full | none: none writes the factorised hidden layers (every factorisable layer but the last) without their bias, the whole budget going to the weights; fine-tune after (default full)')
    .option('--seed <S>', 'seed of the decomposition starts and of the fine-tuning (batch order, validation split) with --finetune (default 1 and 0)')
    .option('--lr <X>', 'learning rate of the fine-tuning with --finetune (default 0.001)')
    .option('--max-minutes <M>', 'with --finetune: bound the end-to-end distillation to M minutes of wall-clock time (the cosine schedule is fitted to the steps that fit)')
    .option('--modes <m>', 'the reshape of the tensorial methods (rcp|rtk|rtt|rtr, tt|tr on dense layers) instead of the balanced split: OUT/IN for every layer it fits, or layer=OUT/IN,... (f1=5x10x10/5x10x16); a --ranks entry may carry "modes" too')
    .option('--json', 'print one JSON object on stdout')
    .action(async function (this: Command, model, opts) {
      const { convertDecoupleCommand, rejectDecoupleFlags } = await commands.convertDecouple();
      if (opts.method === 'decouple' && opts.modes !== undefined) throw new CliError('BAD_ARGUMENT', '--modes goes with --method rcp|rtk|rtt|rtr|tt|tr, not decouple');
      if (opts.method === 'decouple' && opts.prefer !== undefined) throw new CliError('BAD_ARGUMENT', '--prefer goes with --ratio of a factorising --method, not decouple');
      if (opts.method === 'decouple') return convertDecoupleCommand(model, opts);
      rejectDecoupleFlags(opts.method, opts);
      const { convertCommand } = await commands.convert();
      return convertCommand(model, opts, this.getOptionValueSource('quant') === 'cli');
    });

  p.command('eval')
    .description('top-1 accuracy (or, for value outputs, MSE and max abs error) of a .flm or ONNX model in the factorlite runtime')
    .argument('<model>', 'model.flm or model.onnx')
    .requiredOption('--data <set>', 'fashion-mnist | mnist | a folder of IDX files | x.npy | a folder with x.npy [y.npy]')
    .option('--labels <y.npy>', 'with --data x.npy: class ids [N] (integers), or float targets shaped like the output')
    .option('--targets <t.npy>', 'with --data x.npy: target outputs [N, ...output]; reports MSE and max abs error instead of top-1')
    .option('--limit <N>', 'first N test samples')
    .option('--batch <B>', 'batch size', '100')
    .option('--threads <N>', 'most threads a kernel call may use (default: the number of cores)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.eval()).evalCommand(model, opts));

  p.command('inspect')
    .description('layers, ranks, parameters and bytes of a .flm')
    .argument('<model>', 'model.flm')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.inspect()).inspectCommand(model, opts));

  p.command('run')
    .description('run a model on a .npy batch')
    .argument('<model>', 'model.flm or model.onnx')
    .requiredOption('--input <x.npy>', 'input batch (float32, batch first)')
    .option('--output <y.npy>', 'write the outputs here')
    .option('--threads <N>', 'most threads a kernel call may use (default: the number of cores)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.run()).runCommand(model, opts));

  p.command('finetune')
    .description('recover accuracy of a compressed .flm by distillation from its dense ONNX model')
    .argument('<model>', 'model.flm (the student)')
    .requiredOption('--teacher <model>', 'the dense model.onnx it came from')
    .requiredOption('--data <set>', 'fashion-mnist | mnist | a folder of IDX files | x.npy | a folder with x.npy [y.npy]')
    .option('--labels <y.npy>', 'with --data x.npy: class ids [N] (integers), or float targets shaped like the output')
    .requiredOption('-o, --output <file>', 'output .flm (f32)')
    .option('--epochs <N>', 'end-to-end epochs (default 1; 0 with --blockwise runs only that phase)')
    .option('--batch <B>', 'batch size (default 64)')
    .option('--lr <X>', 'Adam learning rate, cosine schedule (default 0.001)')
    .option('--temperature <T>', 'distillation temperature (default 4)')
    .option('--alpha <A>', 'weight of the distillation term vs label cross-entropy (default 0.7)')
    .option('--blockwise', 'first train each factorised layer to reproduce the teacher activation there')
    .option('--block-steps <N>', 'steps of the block-wise phase (default 300)')
    .option('--limit <N>', 'first N training images')
    .option('--eval-limit <N>', 'first N test images')
    .option('--seed <S>', 'seed of the batch order (default 0)')
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.finetune()).finetuneCommand(model, opts));

  p.command('train')
    .description('train mlp / lenet5 / vgg from scratch with factorised hidden layers, write a .flm')
    .requiredOption('--data <set>', 'fashion-mnist | mnist | a folder of IDX files | x.npy | a folder with x.npy [y.npy]')
    .option('--labels <y.npy>', 'with --data x.npy: class ids [N] (integers), or float targets shaped like the output')
    .requiredOption('-o, --output <file>', 'output .flm (rewritten after every epoch, with <file>.state.json)')
    .option('--arch <a>', 'mlp | lenet5 | vgg')
    .option('--layer <k>', 'dense | svd | tucker | cp | tt | tr | rcp | rtk | rtt | rtr | adtn (kind of the hidden layers; adtn: conv layers too, Tucker-2 where depth 1 exceeds the budget)')
    .option('--ratio <R>', 'each hidden layer, bias included, about R times smaller than dense (default 10)')
    .option('--hidden-bias <b>', 'full | none: the hidden layers learn a bias, or have none and the ratio goes to the weights (default full)')
    .option('--dense-ranks <R,..>', 'ranks of the hidden dense layers for rcp | rtk | rtt | rtr instead of the largest uniform rank, e.g. 3,3,2,1 (still within --ratio)')
    .option('--modes <OUT/IN>', 'reshape of the hidden dense layers for rcp | rtk | rtt | rtr | tt | tr, e.g. 4x4x8x8/4x7x4x7 (output modes / input modes, paired in order; default: a balanced split)')
    .option('--epochs <N>', 'total epochs (default 3)')
    .option('--batch <B>', 'batch size (default 64)')
    .option('--lr <X>', 'base learning rate (default 0.003 for adam/adamw, 0.05 for sgd)')
    .option('--optimizer <o>', 'adam | adamw | sgd (default adam)')
    .option('--weight-decay <W>', 'L2 penalty for sgd/adam, decoupled decay for adamw')
    .option('--schedule <s>', 'constant | step | cosine (default cosine)')
    .option('--warmup <steps>', 'linear learning-rate warm-up steps (default 0)')
    .option('--seed <S>', 'seed of the initialisation and the batch order (default 0)')
    .option('--limit <N>', 'first N training images')
    .option('--eval-limit <N>', 'first N test images')
    .option('--resume', 'continue the run checkpointed in the -o file and its .state.json')
    .option('--no-progress', 'no progress bar on stderr')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts) => (await commands.train()).trainCommand(opts));

  p.command('bench')
    .description('latency, throughput, load time and peak RSS of our runtime against onnxruntime-node, each engine in its own process')
    .argument('<model>', 'model.flm')
    .option('--vs <model.onnx>', 'the dense original, run in onnxruntime-node')
    .option('--batch <list>', 'comma-separated batch sizes', '1,32')
    .option('--warmup <N>', 'untimed calls per batch size', '10')
    .option('--warmup-ms <MS>', 'keep warming up each engine until MS milliseconds have passed', '0')
    .option('--iters <N>', 'timed calls per batch size', '100')
    .option('--seed <S>', 'seed of the random inputs', '1')
    .option('--ort-threads <N>', "onnxruntime intra-op threads (default: onnxruntime's own choice)")
    .option('--threads <N>', 'most threads our runtime may use per kernel call (default: the number of cores)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.bench()).benchCommand(model, opts));

  p.command('explain')
    .description('TTL factor-gradient importance (pixel heat map) and CP-conv term / feature-map significance (bar charts), as PNG and JSON')
    .argument('<model>', `model.flm with ttl_dense and/or ${HELP_CP_KIND} layers`)
    .requiredOption('--data <set>', 'fashion-mnist | mnist | a folder of IDX files | x.npy | a folder with x.npy [y.npy] (test split)')
    .option('--labels <y.npy>', 'with --data x.npy: class ids [N] (integers), or float targets shaped like the output')
    .requiredOption('-o, --output <file>', 'importance.png (other pictures go to <stem>.<layer>.png)')
    .option('--limit <N>', 'first N test samples')
    .option('--batch <B>', 'batch size of the gradient passes (default 32)')
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => {
      await (await commands.explain()).explainCommand(model, opts);
    });

  p.command('export')
    .description('write a .flm as an ONNX graph of small convolutions and matmuls over its factors (or TFLite builtins for -o x.tflite)')
    .argument('<model>', 'model.flm')
    .requiredOption('-o, --output <file>', 'output .onnx or .tflite')
    .option('--opset <N>', 'ONNX opset, 11-21', '13')
    .option('--int8', 'TFLite: fully integer model (int8 weights and activations, float32 interface)')
    .option('--calib <data>', 'TFLite --int8: calibration data for activation ranges (first 1000 training samples)')
    .option('--int16-activations', 'TFLite --int8: 16x8 mode (int16 activations, int8 weights, int64 biases; same file size, twice the activation memory)')
    .option('--int8-outputs <range>', 'TFLite --int8: range of int8 logits, top1 (keeps the top-1; low logits may clamp) or full (min/max); default top1 when the output has one column per class of --calib')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.export()).exportCommand(model, opts));

  p.command('hil')
    .description('hardware in the loop: upload a .flm to a board or an emulator, stream a test set, compare with the workstation')
    .requiredOption('--model <file>', 'model.flm, or a model.tflite (encoded as a .flm in memory for the device)')
    .option('--port <path>', 'serial device of a real board (e.g. /dev/ttyACM0)')
    .option('--baud <B>', 'line rate; with --emulate, pace the pty to it')
    .option('--emulate <board>', 'start an emulated board: host | cortex-m4 (the smallest Cortex-M4 build that takes the model) | cortex-m4-f4 (the default Cortex-M4 build only: 128 KB arena, 256 KB model flash) | cortex-m4-l4r5 (the Cortex-M4 with the 640 KB SRAM and 2 MB flash of an STM32L4R5ZI) | avr (an int8-full model on the image with the int8-full path, avr-int8) | avr-xmem (ATmega2560 with external SRAM on the XMEM bus) | avr-int8')
    .requiredOption('--data <set>', 'fashion-mnist | mnist | a folder of IDX files | x.npy | a folder with x.npy [y.npy]')
    .option('--labels <y.npy>', 'with --data x.npy: class ids [N] (integers), or float targets shaped like the output')
    .option('--targets <t.npy>', 'with --data x.npy: target outputs [N, ...output]; reports MSE and max abs error instead of top-1')
    .option('--tolerance <T>', 'value outputs: a sample agrees when max|device - workstation| <= T * max(1, max|workstation|) (default 0.001)')
    .option('--limit <N>', 'first N test samples')
    .option('--faults <spec>', 'inject line faults: flip=P,drop=P,dup=P,cut=P,dir=tx|rx|both,seed=N (or light|heavy)')
    .option('--out <report>', 'write <report>.json and <report>.png (confusion matrix device vs desktop)')
    .option('--timeout <ms>', 'base timeout per request (default 500)')
    .option('--retries <N>', 'resends of a request before it fails (default 5)')
    .option('--window <N>', 'upload chunks in flight (default 4)')
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts) => {
      await (await commands.hil()).hilCommand(opts);
    });

  p.command('demo')
    .description('the whole pipeline on the shipped demo CNN and the mnist package digits')
    .option('--out-dir <dir>', 'where the .flm files go', 'demo-out')
    .option('--method <m>', 'decomposition method', 'auto')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts) => (await commands.demo()).demoCommand(opts));
  registerDeployCommands(p);

  p.command('sweep')
    .description('convert, evaluate and time every point of a method x ratio x quantisation grid; resumable; --queue spreads it over BullMQ workers')
    .argument('<model>', 'model.onnx')
    .requiredOption('--out <dir>', 'sweep folder: rows, artefacts by sha256, results.json (a re-run resumes)')
    .option('--grid <file>', 'JSON {"methods":[..],"ratios":[..],"quant":[..],"finetune":"data","epochs":N}')
    .option('--methods <list>', 'comma-separated: none,svd,tucker,cp,tt,tr,auto')
    .option('--ratios <list>', 'comma-separated whole-model parameter ratios')
    .option('--quant <list>', 'comma-separated: f32,f16,int8,...')
    .option('--finetune <data>', 'fine-tune each point by distillation on this data set')
    .option('--epochs <N>', 'fine-tuning epochs')
    .option('--data <set>', 'test set for the accuracy', 'fashion-mnist')
    .option('--limit <N>', 'first N test samples')
    .option('--bench-iters <N>', 'timed batch-1 runs per point', '50')
    .option('--workers <N>', 'pool processes on this machine (default: one per core)')
    .option('--queue <url>', 'redis://host:port: put the points on BullMQ for `factorlite worker`')
    .option('--attempts <N>', 'tries per point on the queue (default 3)')
    .option('--seed <S>', 'seed of the decompositions', '0')
    .option('--target <list>', 'comma-separated target profiles (factorlite targets): fit and predicted latency of each point')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model, opts) => (await commands.sweep()).sweepCommand(model, opts));

  p.command('worker')
    .description('take sweep points from BullMQ on Redis until stopped')
    .requiredOption('--queue <url>', 'redis://host:port')
    .option('--concurrency <N>', 'points at once on this machine', '1')
    .option('--lock-ms <MS>', 'job lock; a worker silent this long loses its point to another', '30000')
    .action(async (opts) => (await commands.worker()).workerCommand(opts));

  p.command('report')
    .description('one self-contained HTML page: accuracy/size/latency front, per-layer tables, HIL results, explain pictures')
    .argument('<inputs...>', 'sweep folders and/or .flm files')
    .requiredOption('-o, --output <file>', 'report.html')
    .option('--point <key>', 'the point whose layers are tabled (default: the most accurate on the front)')
    .option('--hil <report.json...>', 'hil --out reports to include')
    .option('--explain <explain.json...>', 'explain --json outputs to include (their PNGs are inlined)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (inputs, opts) => (await commands.report()).reportCommand(inputs, opts));
  // The fastest kernels that load, before any command runs (not for --help, --version or an
  // argument error); a line on stderr only when it had to fall back.
  p.hook('preAction', async () => {
    const { initKernels } = await import('../runtime/kernels/backend.js');
    await initKernels((line) => {
      if (line.includes('fell back')) process.stderr.write(`${line}\n`);
    });
  });
  return p;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its one-line message; help and version exit 0.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
    }
    const err = (e instanceof Error ? e : new Error(String(e))) as Error & { code?: unknown };
    const msg = (err.message ?? String(e)).split('\n')[0] ?? '';
    if (typeof err.code === 'string' && err.code.length > 0) {
      const code = cliCode(err.code);
      const tag = msg.includes(code) ? '' : ` [${code}]`;
      process.stderr.write(`factorlite: ${msg}${tag}\n`);
    } else {
      // Every failure the code foresees carries a code; one without is a bug of factorlite.
      process.stderr.write(`factorlite: internal error, a bug of factorlite (please report it with FACTORLITE_DEBUG=1 output): ${err.name}: ${msg} [INTERNAL]\n`);
    }
    if (process.env['FACTORLITE_DEBUG']) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
