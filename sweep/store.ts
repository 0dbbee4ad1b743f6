// A sweep's folder: the plan, one row per finished point, and the artefacts by content hash.
//   <out>/sweep.json          what was asked: model, settings, every point's key
//   <out>/rows/<key>.json     one finished point (written atomically, never rewritten)
//   <out>/artefacts/<sha>.flm the compressed model of a point, named by its sha256
//   <out>/results.json        every finished row in grid order, rewritten after each point
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../converter/atomicWrite.js';
import { sha256, SweepError, type PointSettings, type SweepCommon } from './grid.js';
import type { SweepRow } from './point.js';
import { completeFits } from './targets.js';

export interface SweepPlan {
  common: SweepCommon;
  points: Array<{ key: string; point: PointSettings }>;
}

export class SweepStore {
  constructor(readonly dir: string) {}

  open(): void {
    if (existsSync(this.dir) && !statSync(this.dir).isDirectory()) throw new SweepError('BAD_DIR', `--out ${this.dir} is not a folder`);
    mkdirSync(join(this.dir, 'rows'), { recursive: true });
    mkdirSync(join(this.dir, 'artefacts'), { recursive: true });
  }

  async writePlan(plan: SweepPlan): Promise<void> {
    await writeFileAtomic(join(this.dir, 'sweep.json'), `${JSON.stringify(plan, null, 1)}\n`);
  }

  readPlan(): SweepPlan | undefined {
    const p = join(this.dir, 'sweep.json');
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as SweepPlan) : undefined;
  }

  has(key: string): boolean {
    return existsSync(join(this.dir, 'rows', `${key}.json`));
  }

  rows(): SweepRow[] {
    const d = join(this.dir, 'rows');
    if (!existsSync(d)) return [];
    return readdirSync(d).filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as SweepRow);
  }

  artefactPath(sha: string): string {
    return join(this.dir, 'artefacts', `${sha}.flm`);
  }

  /** Stores a finished point: the artefact first (checked against its name), then the row. */
  async put(row: SweepRow, flm: Uint8Array): Promise<void> {
    if (sha256(flm) !== row.result.artefact) throw new SweepError('POINT_FAILED', `point ${row.key}: artefact bytes do not match their sha256`);
    const a = this.artefactPath(row.result.artefact);
    if (!existsSync(a)) await writeFileAtomic(a, flm);
    if (!this.has(row.key)) await writeFileAtomic(join(this.dir, 'rows', `${row.key}.json`), `${JSON.stringify(row)}\n`);
  }

  /** The row with its fit on each of these targets (from the stored artefact where the row has none). */
  withFits(row: SweepRow, targets: string[] | undefined): SweepRow {
    if (!targets?.length) return row;
    return { ...row, fits: completeFits(row.fits, targets, this.artefactPath(row.result.artefact)) };
  }

  /** The plan's finished rows in grid order, with fits on the plan's targets. */
  planRows(plan: SweepPlan): SweepRow[] {
    const byKey = new Map(this.rows().map((r) => [r.key, r]));
    return plan.points.map((p) => byKey.get(p.key)).filter((r): r is SweepRow => r !== undefined)
      .map((r) => this.withFits(r, plan.common.targets));
  }

  /** results.json: the plan's finished rows in grid order. */
  async writeResults(plan: SweepPlan): Promise<SweepRow[]> {
    const rows = this.planRows(plan);
    await writeFileAtomic(join(this.dir, 'results.json'), `${JSON.stringify({ common: plan.common, rows }, null, 1)}\n`);
    return rows;
  }
}
