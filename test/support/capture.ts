// Runs an in-process command and collects what it wrote to stdout and stderr.
export async function capture(fn: () => Promise<void>): Promise<{ out: string; err: string }> {
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { out, err };
}
