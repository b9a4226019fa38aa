/** Splits `--flag value` / `--flag=value` / `--switch` from positional arguments. */
export function parseArgs(args: string[], booleans: string[] = []): { flags: Record<string, string | true>; positional: string[] } {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (!m) positional.push(arg);
    else if (m[2] !== undefined) flags[m[1]!] = m[2];
    else if (booleans.includes(m[1]!) || i + 1 >= args.length || args[i + 1]!.startsWith("--")) flags[m[1]!] = true;
    else flags[m[1]!] = args[++i]!;
  }
  return { flags, positional };
}
