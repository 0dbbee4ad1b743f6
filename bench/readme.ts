// Replaces the text between <!-- NAME:start --> and <!-- NAME:end --> in the README with a bench result.
import { readFileSync, writeFileSync } from 'node:fs';

export function replaceReadmeSection(path: string, name: string, body: string): void {
  const text = readFileSync(path, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README has no ${start} ... ${end} section`);
  writeFileSync(path, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}
