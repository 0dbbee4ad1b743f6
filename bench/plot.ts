// Accuracy against parameter ratio, one panel per fixture, one line per method, as a plain SVG.
interface Point {
  fixture: string;
  method: string;
  ok: boolean;
  ratio?: number;
  accuracy?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];

export function accuracyPlot(rows: Point[], dense: Record<string, { accuracy: number }>, fixtures: string[], methods: string[]): string {
  const W = 420;
  const H = 300;
  const m = { l: 50, r: 10, t: 30, b: 40 };
  const parts: string[] = [];
  fixtures.forEach((f, fi) => {
    const ox = fi * W;
    const pts = rows.filter((r) => r.fixture === f && r.ok);
    const maxR = Math.max(2, ...pts.map((p) => p.ratio!));
    const x = (r: number) => ox + m.l + ((Math.log(r) / Math.log(maxR * 1.1)) * (W - m.l - m.r));
    const y = (a: number) => m.t + (1 - a) * (H - m.t - m.b);
    parts.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="14">${f}</text>`);
    parts.push(`<line x1="${ox + m.l}" y1="${H - m.b}" x2="${ox + W - m.r}" y2="${H - m.b}" stroke="#000"/>`);
    parts.push(`<line x1="${ox + m.l}" y1="${m.t}" x2="${ox + m.l}" y2="${H - m.b}" stroke="#000"/>`);
    for (const a of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<text x="${ox + m.l - 5}" y="${y(a) + 4}" text-anchor="end" font-size="10">${a * 100}%</text>`);
      parts.push(`<line x1="${ox + m.l}" y1="${y(a)}" x2="${ox + W - m.r}" y2="${y(a)}" stroke="#eee"/>`);
    }
    for (const r of [1, 2, 5, 10, 20, 50].filter((v) => v <= maxR * 1.1)) {
      parts.push(`<text x="${x(r)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${r}x</text>`);
    }
    parts.push(`<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">parameter ratio (log)</text>`);
    const d = dense[f];
    if (d) parts.push(`<line x1="${ox + m.l}" y1="${y(d.accuracy)}" x2="${ox + W - m.r}" y2="${y(d.accuracy)}" stroke="#999" stroke-dasharray="4 3"/>`);
    methods.forEach((meth, mi) => {
      const line = pts.filter((p) => p.method === meth).sort((a, b) => a.ratio! - b.ratio!);
      if (!line.length) return;
      const c = COLORS[mi % COLORS.length];
      parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${line.map((p) => `${x(p.ratio!).toFixed(1)},${y(p.accuracy!).toFixed(1)}`).join(' ')}"/>`);
      for (const p of line) parts.push(`<circle cx="${x(p.ratio!).toFixed(1)}" cy="${y(p.accuracy!).toFixed(1)}" r="3" fill="${c}"/>`);
      parts.push(`<text x="${ox + W - m.r - 60}" y="${m.t + 14 + mi * 13}" font-size="11" fill="${c}">${meth}</text>`);
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * fixtures.length}" height="${H}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}
