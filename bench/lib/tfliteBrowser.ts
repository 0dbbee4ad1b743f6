// The TFLite reference interpreter: @tensorflow/tfjs-tflite (WebAssembly TensorFlow Lite) in Debian's
// Chromium, driven headless by playwright-core. A loopback HTTP server serves the tfjs scripts,
// tfjs-tflite's wasm/ folder, and the models and inputs a test registers; the page runs them.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env['FACTORLITE_CHROMIUM'] ?? '/usr/bin/chromium';
const NM = resolve(REPO_ROOT, 'node_modules/@tensorflow');
const SCRIPTS: Record<string, string> = {
  '/tf-core.js': join(NM, 'tfjs-core/dist/tf-core.min.js'),
  '/tf-backend-cpu.js': join(NM, 'tfjs-backend-cpu/dist/tf-backend-cpu.min.js'),
  '/tf-tflite.js': join(NM, 'tfjs-tflite/dist/tf-tflite.min.js'),
};
export const WASM_DIR = join(NM, 'tfjs-tflite/wasm');

const PAGE = `<!doctype html><meta charset="utf-8"><title>tflite reference</title>
<script src="/tf-core.js"></script><script src="/tf-backend-cpu.js"></script><script src="/tf-tflite.js"></script>
<script>
tflite.setWasmPath('/wasm/');
window.runTflite = async (modelUrl, dataUrl, inShape, count) => {
  const model = await tflite.loadTFLiteModel(modelUrl, { numThreads: 1 });
  const data = new Float32Array(await (await fetch(dataUrl)).arrayBuffer());
  const per = inShape.reduce((a, b) => a * b, 1);
  let out = null;
  for (let i = 0; i < count; i++) {
    const x = tf.tensor(data.subarray(i * per, (i + 1) * per), inShape, 'float32');
    let y = model.predict(x);
    if (!(y instanceof tf.Tensor)) y = Array.isArray(y) ? y[0] : Object.values(y)[0];
    const v = y.dataSync();
    if (!out) out = new Float32Array(count * v.length);
    out.set(v, i * v.length);
    x.dispose(); y.dispose();
  }
  const shape = model.outputs[0].shape;
  // Base64 of the float32 bytes: a plain array of 100k numbers crawls through the page protocol.
  const bytes = new Uint8Array(out.buffer);
  let bin = '';
  for (let k = 0; k < bytes.length; k += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
  return { values: btoa(bin), outShape: shape, inputs: model.inputs.map((t) => ({ shape: t.shape, dtype: t.dtype })) };
};
window.ready = true;
</script>`;

export interface TfliteRun {
  /** Outputs of every sample, concatenated (the first model output). */
  values: Float32Array;
  outShape: number[];
}

export class TfliteReference {
  private next = 0;

  private constructor(private readonly server: Server, private readonly context: BrowserContext, private readonly page: Page,
    private readonly profile: string, private readonly files: Map<string, Uint8Array>) {}

  static async start(): Promise<TfliteReference> {
    const files = new Map<string, Uint8Array>();
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      let body: Uint8Array | string | undefined;
      let type = 'application/octet-stream';
      if (path === '/') { body = PAGE; type = 'text/html'; }
      else if (SCRIPTS[path]) { body = readFileSync(SCRIPTS[path]!); type = 'text/javascript'; }
      else if (path.startsWith('/wasm/') && /^[\w.-]+$/.test(path.slice(6)) && existsSync(join(WASM_DIR, path.slice(6)))) {
        body = readFileSync(join(WASM_DIR, path.slice(6)));
        type = path.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      } else body = files.get(path);
      if (body === undefined) { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const profile = mkdtempSync(join(tmpdir(), 'factorlite-chromium-'));
    let context: BrowserContext;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
          '--disable-sync', '--no-first-run'],
      });
    } catch (e) {
      server.close();
      rmSync(profile, { recursive: true, force: true });
      throw e;
    }
    const page = context.pages()[0] ?? await context.newPage();
    const ref = new TfliteReference(server, context, page, profile, files);
    await page.goto(`${base}/`);
    await page.waitForFunction('window.ready === true');
    return ref;
  }

  /** Runs `count` samples of shape `inShape` (from `inputs`, concatenated) through `model`. */
  async run(model: Uint8Array, inShape: number[], inputs: Float32Array, count: number): Promise<TfliteRun> {
    const id = this.next++;
    this.files.set(`/m${id}.tflite`, model);
    this.files.set(`/x${id}.bin`, new Uint8Array(inputs.buffer, inputs.byteOffset, inputs.byteLength));
    try {
      const r = await this.page.evaluate(
        ([m, x, s, n]) => (window as unknown as { runTflite: (...a: unknown[]) => Promise<{ values: string; outShape: number[] }> }).runTflite(m, x, s, n),
        [`/m${id}.tflite`, `/x${id}.bin`, inShape, count] as const,
      );
      const raw = Buffer.from(r.values, 'base64');
      return { values: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), outShape: r.outShape };
    } finally {
      this.files.delete(`/m${id}.tflite`);
      this.files.delete(`/x${id}.bin`);
    }
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
    await new Promise<void>((ok) => this.server.close(() => ok()));
    rmSync(this.profile, { recursive: true, force: true });
  }
}
