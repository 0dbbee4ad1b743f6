// The fixtures compressed at ratio 10 by each factor method, as the converter writes them (with
// their memory plans). Converting takes seconds to minutes per model, so the compressed models are
// cached under the OS temp dir, keyed by fixture size and mtime; each call re-writes the cached
// model with the current writer so the stored plans always follow the current planner.
import { mkdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Test } from 'tap';
import { compressModel, type Method } from '../../../converter/compress.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { writeFlm, writeFlmFile } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { Model } from '../../../runtime/ir.js';
import { FIXTURES, needPath } from '../../support/require.js';

export const FACTOR_METHODS: readonly Method[] = ['svd', 'tucker', 'cp', 'tt', 'tr'];
export const RATIO10_FIXTURES = ['lenet5_fashion', 'mlp_fashion'] as const;

const CACHE = join(tmpdir(), 'factorlite-test-models');

export async function ratio10(t: Test, fixture: string, method: Method): Promise<Model | undefined> {
  const onnx = resolve(FIXTURES, `${fixture}.onnx`);
  if (!needPath(t, onnx, `fixture ${fixture}.onnx`)) return undefined;
  const st = statSync(onnx);
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `${fixture}-${st.size}-${Math.floor(st.mtimeMs)}-${method}-r10.flm`);
  if (!existsSync(path)) {
    const { model } = compressModel(importOnnxFile(onnx), { method, ratio: 10, log: () => {} });
    await writeFlmFile(model, path);
  }
  return readFlm(writeFlm(readFlm(readFileSync(path))));
}
