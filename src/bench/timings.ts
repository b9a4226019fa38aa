/** The median of a set of timings (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Prints one line per labelled series of millisecond timings, aligned, each with its median (`digits` decimals). */
export function printTimings(rows: Array<[string, number[]]>, digits = 1): void {
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, xs] of rows)
    console.log(`${(label + ":").padEnd(width + 1)} ${xs.map((t) => t.toFixed(0).padStart(5)).join(" ")} ms; median ${median(xs).toFixed(digits)} ms`);
}
