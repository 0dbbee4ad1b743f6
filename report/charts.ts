// Charts as SVG, drawn at build time by Vega-Lite (compile) and Vega (render, no DOM), so the page
// needs no script and no network. Each mark's `description` becomes an SVG <title>: the browser
// shows it on hover.
import type * as vl from 'vega-lite';
import { importOptional } from '../runtime/optionalPackage.js';

export type VlSpec = vl.TopLevelSpec;

export async function renderSvg(spec: VlSpec): Promise<string> {
  // Optional peers: only `report` draws charts.
  const vega = await importOptional<typeof import('vega')>('vega', 'report');
  const vlib = await importOptional<typeof import('vega-lite')>('vega-lite', 'report');
  const view = new vega.View(vega.parse(vlib.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  // <path aria-label="…" role="graphics-symbol" …/>  ->  <path …><title>…</title></path>
  // (Vega has already XML-escaped the label.)
  return svg.replace(/<(path|rect|line)([^>]*?) aria-label="([^"]*)"([^>]*?)\/>/g, (_m, tag: string, pre: string, label: string, post: string) =>
    post.includes('graphics-symbol') || pre.includes('graphics-symbol')
      ? `<${tag}${pre} aria-label="${label}"${post}><title>${label}</title></${tag}>`
      : _m);
}
