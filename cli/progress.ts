// Progress on stderr: a bar on a terminal, a line every few seconds otherwise (logs, CI).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, label?: string): void;
  stop(): void;
}

export function progress(title: string, total: number, enabled = true): Progress {
  if (!enabled) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${title} [{bar}] {percentage}% {value}/{total} {label}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { label: '' });
    return {
      update: (done, label = '') => bar.update(done, { label }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, label = '') {
      const now = Date.now();
      if (now - last < 5000 && done < total) return;
      last = now;
      process.stderr.write(`${title}: ${done}/${total} ${label}\n`);
    },
    stop() {},
  };
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}
