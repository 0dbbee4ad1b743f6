// The firmware keeps its model tables (node, value and tensor records, per-channel scales, op
// parameters) at the arena's end, beside the plan's activations and scratch. A conversion for a
// board is given `--arena` = the board's arena less a reserve for them; a fixed reserve is too
// small for some models (VWW's 57 nodes and 71 tensors take 38,952 B on the Cortex-M4). The device
// counts them exactly when it prepares a file and says so when they do not fit:
// `TOO_LARGE: plan arena 460800 + tables 38952 > arena 491520`.

/** The table bytes a device's refusal names, or undefined when the refusal is not about them. */
export function refusedTables(why: string | null | undefined): number | undefined {
  const m = /plan arena (\d+) \+ tables (\d+) > arena (\d+)/.exec(why ?? '');
  return m ? Number(m[2]) : undefined;
}

/**
 * The reserve for a conversion again after the device counted `tables` bytes of tables: those
 * bytes and 1 KB more (another choice of forms may add a tensor or two), in whole KB.
 */
export function reserveAfter(tables: number): number {
  return Math.ceil((tables + 1024) / 1024) * 1024;
}
