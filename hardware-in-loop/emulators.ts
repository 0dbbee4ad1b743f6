// Starts an emulated board with the firmware the Makefile builds, finds the serial pty it offers,
// and stops it again on stop(), on process exit and on SIGINT/SIGTERM, so no emulator outlives us.
//
//   host       build/host/<binary>         a Linux process; prints "pty /dev/pts/N" first
//   cortex-m4  qemu-system-arm -M mps2-an386 ... -serial pty -kernel build/cortex-m4/<elf>
//              prints "char device redirected to /dev/pts/N (label serial0)"
//   cortex-m4-l4r5  the same port and emulator, built with the memory of an STM32L4R5ZI (640 KB
//              SRAM, 2 MB flash: MLPerf Tiny's reference board): build/cortex-m4-l4r5/fw.elf
//   avr        build/avr/simavr-pty build/avr/<elf>; prints "pty /dev/pts/N" first
//   avr-xmem   the same ATmega2560 with external SRAM on the XMEM bus (32 KB of data space): firmware-xmem.elf, for
//              models whose activations do not fit the internal 8 KB
//   avr-int8   the ATmega2560 image with the int8-full path (firmware-int8.elf, `make avr-int8`): what
//              `hil --emulate avr` runs an int8-full model on (the default image leaves that code out)
//
// build/ is the firmware folder's own (a source checkout) when that folder is writable. Where it is
// not (a global npm install owned by root, a folder made read-only), the builds go to a cache folder
// keyed by the hash of the firmware's sources (firmwareBuildDir), so an installed package builds
// each board once and a changed firmware builds afresh.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDirLock } from './dirLock.js';

export type BoardKind = 'host' | 'cortex-m4' | 'cortex-m4-l4r5' | 'avr' | 'avr-xmem' | 'avr-int8';
export const BOARDS: readonly BoardKind[] = ['host', 'cortex-m4', 'avr', 'avr-xmem', 'avr-int8', 'cortex-m4-l4r5'];

/** The boards QEMU emulates (mps2-an386): the cortex-m4 port's builds. */
export const isQemuBoard = (board: BoardKind): boolean => board === 'cortex-m4' || board === 'cortex-m4-l4r5';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIRMWARE_DIR = join(REPO_ROOT, 'firmware-bridge', 'firmware');
/** The build folder of a source checkout (firmwareBuildDir() is where builds really go). */
export const BUILD_DIR = join(FIRMWARE_DIR, 'build');

export class EmulatorError extends Error {
  constructor(readonly code: 'BAD_BOARD' | 'BUILD_FAILED' | 'NOT_FOUND' | 'START_FAILED' | 'NO_PTY', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isBoard(s: string): s is BoardKind {
  return (BOARDS as readonly string[]).includes(s);
}

/** What a board needs on this machine besides the firmware build (for skips and errors). */
export function boardTools(board: BoardKind): string[] {
  if (isQemuBoard(board)) return ['qemu-system-arm', 'arm-none-eabi-gcc'];
  if (board === 'avr' || board === 'avr-xmem' || board === 'avr-int8') return ['avr-gcc'];
  return ['cc'];
}

export function which(tool: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = join(dir, tool);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The emulator command line for a built board: [program, ...args]. */
export interface Launch {
  program: string;
  args: string[];
  /** Files the launch needs (the firmware image, the runner). */
  files: string[];
}

function firstExisting(dir: string, names: string[], ext?: string): string | undefined {
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  if (ext && existsSync(dir)) {
    const hit = readdirSync(dir).find((f) => f.endsWith(ext));
    if (hit) return join(dir, hit);
  }
  return undefined;
}

export function launchFor(board: BoardKind, buildDir: string = firmwareBuildDir()): Launch {
  const dir = join(buildDir, board === 'avr-xmem' || board === 'avr-int8' ? 'avr' : board);
  if (board === 'avr-int8') {
    const runner = join(dir, 'simavr-pty');
    const elf = join(dir, 'firmware-int8.elf');
    return { program: runner, args: ['--quiet', elf], files: [runner, elf] };
  }
  if (board === 'avr-xmem') {
    const runner = join(dir, 'simavr-pty');
    const elf = join(dir, 'firmware-xmem.elf');
    return { program: runner, args: ['--quiet', '--xmem', elf], files: [runner, elf] };
  }
  if (board === 'host') {
    const bin = firstExisting(dir, ['fl-host', 'firmware', 'fw', 'factorlite-fw']) ?? join(dir, 'fl-host');
    return { program: bin, args: [], files: [bin] };
  }
  if (isQemuBoard(board)) {
    const elf = firstExisting(dir, ['fw.elf', 'firmware.elf'], '.elf') ?? join(dir, 'fw.elf');
    // -icount shift=0: one virtual nanosecond per instruction, so the firmware's cycle counter
    // reads emulated instructions. -monitor none: nothing reads our stdin.
    return {
      program: 'qemu-system-arm',
      args: ['-M', 'mps2-an386', '-nographic', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0', '-kernel', elf],
      files: [elf],
    };
  }
  const runner = firstExisting(dir, ['simavr-pty']) ?? join(dir, 'simavr-pty');
  const elf = firstExisting(dir, ['fw.elf', 'firmware.elf'], '.elf') ?? join(dir, 'fw.elf');
  return { program: runner, args: ['--quiet', elf], files: [runner, elf] };
}

/** Writable by us, and not made read-only: a folder whose mode has no write bit counts as read-only
 * even for root (who could write it anyway), so a package folder marked read-only is left alone. */
function writableFolder(dir: string): boolean {
  try {
    const st = statSync(dir);
    if (!st.isDirectory() || (st.mode & 0o222) === 0) return false;
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** sha256 of the firmware's sources: every file under `firmwareDir` but build/, by relative path. */
export function firmwareSourcesHash(firmwareDir: string = FIRMWARE_DIR): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = join(dir, e.name);
      if (dir === firmwareDir && e.name === 'build') continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = statSync(p);
        h.update(`${relative(firmwareDir, p)}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`).update(readFileSync(p));
      }
    }
  };
  walk(firmwareDir);
  return h.digest('hex');
}

/** Where cached builds live: $FACTORLITE_CACHE, else $XDG_CACHE_HOME/factorlite, else
 * ~/.cache/factorlite; the system's temporary folder when none of them can be made. */
function cacheRoots(): string[] {
  const env = process.env;
  const roots: string[] = [];
  if (env['FACTORLITE_CACHE']) roots.push(env['FACTORLITE_CACHE']);
  else roots.push(join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'factorlite'));
  roots.push(join(tmpdir(), `factorlite-cache-${process.getuid?.() ?? 'user'}`));
  return roots;
}

/**
 * The folder the board builds go to: `<firmwareDir>/build` when the firmware folder (or its build/)
 * is writable, else `<cache>/firmware-<sources hash>`, created here.
 */
export function firmwareBuildDir(firmwareDir: string = FIRMWARE_DIR): string {
  const own = join(firmwareDir, 'build');
  if (existsSync(own) ? writableFolder(own) : writableFolder(firmwareDir)) return own;
  const name = `firmware-${firmwareSourcesHash(firmwareDir).slice(0, 16)}`;
  const tried: string[] = [];
  for (const root of cacheRoots()) {
    const dir = join(root, name);
    try {
      mkdirSync(dir, { recursive: true });
      if (writableFolder(dir)) return dir;
    } catch {
      // the next root
    }
    tried.push(root);
  }
  throw new EmulatorError('BUILD_FAILED', `the firmware folder ${firmwareDir} is read-only and no cache folder is writable (tried ${tried.join(', ')}; set FACTORLITE_CACHE)`);
}

/**
 * Holds the board's build lock while `fn` runs, so that test files and hil runs side by side never
 * run make on the same outputs at once. A lock older than 10 minutes, or whose owner is gone, is stale.
 */
function withBuildLock<T>(board: BoardKind, buildDir: string, fn: () => T): T {
  const lock = join(buildDir, `.lock-${board.replace('-xmem', '').replace('-int8', '')}`);
  return withDirLock(lock, fn, {
    staleMs: 10 * 60_000,
    waitMs: 10 * 60_000,
    onTimeout: () => {
      throw new EmulatorError('BUILD_FAILED', `waited 10 minutes for ${lock} (another build of the ${board} firmware)`);
    },
  });
}

/**
 * Brings the board's firmware up to date with make (a no-op when it is) and returns its launch.
 * make's output goes to `log` when it built something. Without make, existing files are used.
 * `firmwareDir` is the firmware's source folder (default: the package's own).
 */
export function ensureFirmware(board: BoardKind, log: (line: string) => void = () => {}, firmwareDir: string = FIRMWARE_DIR): Launch {
  const buildDir = firmwareBuildDir(firmwareDir);
  const present = () => launchFor(board, buildDir).files.every((f) => existsSync(f));
  if (!which('make')) {
    if (present()) return launchFor(board, buildDir);
    throw new EmulatorError('BUILD_FAILED', `the ${board} firmware is not built and make is not installed`);
  }
  // A build outside the source folder: make runs there (the sources are relative) and writes to buildDir.
  const outside = buildDir !== join(firmwareDir, 'build') ? [`BUILD=${buildDir}`, `AVR_BUILD=${join(buildDir, 'avr')}`] : [];
  const cmd = `make -C ${firmwareDir}${outside.map((a) => ` ${a}`).join('')} ${board}`;
  withBuildLock(board, buildDir, () => {
    if (!present()) log(`building the ${board} firmware: ${cmd}`);
    const r = spawnSync('make', ['-C', firmwareDir, ...outside, board], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (!/Nothing to be done|is up to date/.test(text)) for (const line of text.split('\n')) if (line.trim() && !/^make(\[\d+\])?: (Entering|Leaving)/.test(line)) log(`  ${line}`);
    if (r.error || r.status !== 0) {
      const last = `${r.stderr ?? ''}`.trim().split('\n').at(-1) ?? r.error?.message ?? '';
      throw new EmulatorError('BUILD_FAILED', `building the ${board} firmware failed (${cmd}): ${last}`);
    }
  });
  const l = launchFor(board, buildDir);
  const lost = l.files.find((f) => !existsSync(f));
  if (lost) throw new EmulatorError('NOT_FOUND', `make ${board} built no ${lost}`);
  return l;
}

export interface Emulator {
  board: BoardKind;
  /** The serial line to open. */
  pty: string;
  pid: number;
  child: ChildProcess;
  /** Everything the emulator printed so far (stdout and stderr). */
  output(): string;
  /** Lines the emulator prints after its pty line (the AVR runner's events, for instance). */
  onLine(listener: (line: string) => void): void;
  /** Sends a line to the emulator's stdin (the AVR runner reads "adc CH VALUE" there). */
  send(line: string): void;
  /** Signals the emulator (SIGUSR1 resets the host port and the AVR runner). */
  signal(sig: NodeJS.Signals): void;
  /** Stops the emulator: SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  readonly exited: Promise<number | null>;
}

const PTY_PATTERNS = [/^pty (\/dev\/\S+)/m, /char device redirected to (\/dev\/\S+)/];

// ---- no orphans: every emulator we start is stopped with us ----------------------------------

const running = new Set<Emulator>();
let hooked = false;

function killAllNow(): void {
  for (const e of running) {
    try {
      process.kill(-e.pid, 'SIGKILL');
    } catch {
      try {
        e.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  killAllNow();
  unhook();
  // Die of the same signal, as we would have without the hook.
  process.kill(process.pid, sig);
}
const onSigint = () => onSignal('SIGINT');
const onSigterm = () => onSignal('SIGTERM');
const onSighup = () => onSignal('SIGHUP');

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('SIGHUP', onSighup);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.off('exit', killAllNow);
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  process.off('SIGHUP', onSighup);
}

export interface StartOptions {
  /** Progress and the build's output. */
  log?: (line: string) => void;
  /** How long to wait for the pty line (default 20 s). */
  timeoutMs?: number;
  /** Extra arguments for the emulator (the host port takes --flash BYTES, --store FILE). */
  args?: string[];
  /** Extra environment (the host port reads FL_HOST_PINS and FL_HOST_PINS_OUT). */
  env?: Record<string, string>;
  /** QEMU boards: run this firmware image instead of the board's build (bench/hil.ts runs the
   * cortex-m4-ref build, the portable kernel loops, beside the default one). */
  kernel?: string;
  /** The firmware's source folder (default: the package's own, FIRMWARE_DIR). */
  firmwareDir?: string;
}

/** Builds the firmware if needed, starts the emulator and waits for its pty. */
export async function startEmulator(board: BoardKind, opts: StartOptions = {}): Promise<Emulator> {
  if (!isBoard(board)) throw new EmulatorError('BAD_BOARD', `--emulate ${String(board)}: expected one of ${BOARDS.join(', ')}`);
  const log = opts.log ?? (() => {});
  const launch = ensureFirmware(board, log, opts.firmwareDir);
  if (opts.kernel !== undefined) {
    const at = launch.args.indexOf('-kernel');
    if (!isQemuBoard(board) || at < 0) throw new EmulatorError('BAD_BOARD', `${board}: only a QEMU board takes another firmware image`);
    if (!existsSync(opts.kernel)) throw new EmulatorError('NOT_FOUND', `firmware image ${opts.kernel} not found`);
    launch.args[at + 1] = opts.kernel;
  }
  if (isQemuBoard(board) && !which('qemu-system-arm')) throw new EmulatorError('NOT_FOUND', 'qemu-system-arm is not installed (Debian package qemu-system-arm)');
  let child: ChildProcess;
  try {
    // Its own process group, so stop() reaches anything it starts and a Ctrl-C reaches us first.
    child = spawn(launch.program, [...(opts.args ?? []), ...launch.args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...opts.env } });
  } catch (e) {
    throw new EmulatorError('START_FAILED', `cannot start ${launch.program}: ${(e as Error).message}`, { cause: e });
  }
  let text = '';
  let partial = '';
  const listeners: Array<(line: string) => void> = [];
  let ptySeen = false;
  const exited = new Promise<number | null>((res) => child.once('exit', (code, sig) => res(code ?? (sig ? -1 : null))));
  const emulator: Emulator = {
    board,
    pty: '',
    pid: child.pid ?? -1,
    child,
    output: () => text,
    onLine: (l) => listeners.push(l),
    send: (line) => {
      child.stdin?.write(`${line}\n`);
    },
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    stop: async () => {
      running.delete(emulator);
      if (running.size === 0) unhook();
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-emulator.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const t = setTimeout(() => {
        try {
          process.kill(-emulator.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, 2000);
      await exited;
      clearTimeout(t);
    },
    exited,
  };
  if (child.pid === undefined) {
    const err = await new Promise<Error>((res) => child.once('error', res));
    throw new EmulatorError('START_FAILED', `cannot start ${launch.program}: ${err.message}`, { cause: err });
  }
  running.add(emulator);
  hook();
  child.stdin?.on('error', () => {}); // the emulator may not read stdin
  const ptyPromise = new Promise<string>((resolvePty, reject) => {
    const timer = setTimeout(() => reject(new EmulatorError('NO_PTY', `${board} emulator printed no pty path within ${(opts.timeoutMs ?? 20000) / 1000} s: ${text.trim().split('\n').at(-1) ?? ''}`)), opts.timeoutMs ?? 20000);
    const feed = (d: Buffer) => {
      const s = d.toString('utf8');
      text += s;
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!ptySeen) {
          for (const re of PTY_PATTERNS) {
            const m = re.exec(line);
            if (m) {
              ptySeen = true;
              clearTimeout(timer);
              resolvePty(m[1]!);
              break;
            }
          }
          if (ptySeen) continue;
        }
        for (const l of listeners) l(line);
      }
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
    void exited.then((code) => {
      clearTimeout(timer);
      if (!ptySeen) reject(new EmulatorError('START_FAILED', `${board} emulator exited (${code}) before offering a pty: ${text.trim().split('\n').at(-1) ?? ''}`));
    });
  });
  try {
    (emulator as { pty: string }).pty = await ptyPromise;
  } catch (e) {
    await emulator.stop();
    throw e;
  }
  log(`${board} emulator running (pid ${emulator.pid}, serial ${emulator.pty})`);
  return emulator;
}
