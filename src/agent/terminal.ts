import { createRequire } from "node:module";

/** A pseudo-terminal pair: the agent keeps the master, the dyno gets the slave as its stdio. */
export interface Terminal {
  master: number;
  slave: number;
  /** `/dev/pts/N`. */
  name: string;
}

interface PtyBinding {
  open(cols: number, rows: number): { master: number; slave: number; pty: string };
}

let binding: PtyBinding | undefined;

/**
 * Opens a pseudo-terminal of `cols` × `rows` with openpty(3), through @lydell/node-pty's
 * prebuilt native module (its `spawn` cannot hand a child the extra pipe a sandboxed dyno
 * receives its environment on, so the pair is opened here and the dyno spawned as usual).
 */
export function openTerminal(cols: number, rows: number): Terminal {
  binding ??= createRequire(import.meta.url)(`@lydell/node-pty-${process.platform}-${process.arch}/pty.node`) as PtyBinding;
  const t = binding.open(clamp(cols, 80), clamp(rows, 24));
  return { master: t.master, slave: t.slave, name: t.pty };
}

/** A terminal dimension the kernel takes (1 … 1000), or the classic default. */
function clamp(n: number, fallback: number): number {
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : fallback;
}
