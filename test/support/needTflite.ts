// The TFLite reference for a test: started, and stopped at teardown; a skip with the reason when
// Chromium is missing, a failure under FACTORLITE_CI=1.
import { existsSync } from 'node:fs';
import type { Test } from 'tap';
import { missing } from './require.js';
import { CHROMIUM, TfliteReference, WASM_DIR } from '../../bench/lib/tfliteBrowser.js';

export async function needTfliteReference(t: Test): Promise<TfliteReference | undefined> {
  if (!existsSync(CHROMIUM)) return missing(t, `Chromium not found at ${CHROMIUM} (Debian package chromium)`) || undefined;
  if (!existsSync(WASM_DIR)) return missing(t, `@tensorflow/tfjs-tflite's wasm folder not found at ${WASM_DIR}`) || undefined;
  const ref = await TfliteReference.start();
  t.teardown(() => ref.close());
  return ref;
}
