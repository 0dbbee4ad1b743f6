// Replaces the text between <!-- NAME:start --> and <!-- NAME:end --> in the README with a bench result.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function replaceReadmeSection(path: string, name: string, body: string): void {
  const text = readFileSync(path, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README has no ${start} ... ${end} section`);
  writeFileSync(path, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}

/**
 * Writes a bench's results as `<dir>/<name>.json` and `<dir>/<name>.md`, and, when `readme` is
 * given, puts the markdown in that README's `bench:<name>` section.
 */
export function writeBenchResults(dir: string, name: string, json: unknown, md: string, readme?: string | null): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(json, null, 1)}\n`);
  writeFileSync(join(dir, `${name}.md`), `${md}\n`);
  process.stderr.write(`wrote ${join(dir, name)}.json and ${name}.md\n`);
  if (readme) {
    replaceReadmeSection(readme, `bench:${name}`, md);
    process.stderr.write(`updated ${readme}\n`);
  }
}
