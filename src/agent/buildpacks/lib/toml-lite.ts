/**
 * The TOML that Pipfiles use: `[table]` and `[[array.of.tables]]` headers, bare or quoted
 * keys, basic and literal strings, numbers, booleans, arrays (which may span lines) and
 * one-line inline tables, with `#` comments. Multi-line strings, dates and dotted keys are
 * refused with the line number instead of being misread.
 */

/** A TOML value. */
export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
/** A TOML table. */
export interface TomlTable {
  [key: string]: TomlValue;
}

/** Input outside the subset, or not TOML at all; the message starts with the line number. */
export class TomlError extends Error {
  constructor(
    readonly line: number,
    why: string,
  ) {
    super(`line ${line}: ${why}`);
  }
}

const BARE_KEY = /^[A-Za-z0-9_-]+/;

/** A cursor over the whole text, so that arrays may continue on later lines. */
class Reader {
  pos = 0;
  constructor(private readonly s: string) {}

  get line(): number {
    return this.s.slice(0, this.pos).split("\n").length;
  }
  peek(): string {
    return this.s[this.pos] ?? "";
  }
  ahead(n: number): string {
    return this.s.slice(this.pos, this.pos + n);
  }
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  fail(why: string): never {
    throw new TomlError(this.line, why);
  }
  /** Skips spaces and tabs, and with `newlines` also line breaks and comments. */
  skip(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || (newlines && (c === "\n" || c === "\r"))) this.pos++;
      else if (c === "#" && newlines) while (this.pos < this.s.length && this.peek() !== "\n") this.pos++;
      else return;
    }
  }
  /** After a key/value or header: only a comment may follow on the line. */
  endOfLine(): void {
    this.skip(false);
    if (this.peek() === "#") while (this.pos < this.s.length && this.peek() !== "\n") this.pos++;
    if (this.peek() === "\r") this.pos++;
    if (this.pos < this.s.length && this.peek() !== "\n") this.fail(`unexpected ${JSON.stringify(this.s.slice(this.pos, this.pos + 20))}`);
    this.pos++;
  }
  string(): string {
    const q = this.peek();
    if (this.s.startsWith(q.repeat(3), this.pos)) this.fail("multi-line strings are not supported");
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.s[this.pos];
      if (c === undefined || c === "\n") this.fail("unterminated string");
      this.pos++;
      if (c === q) return out;
      if (c === "\\" && q === '"') {
        const e = this.s[this.pos++];
        const simple: Record<string, string> = { '"': '"', "\\": "\\", n: "\n", t: "\t", r: "\r", b: "\b", f: "\f" };
        if (e !== undefined && e in simple) out += simple[e];
        else if (e === "u" || e === "U") {
          const len = e === "u" ? 4 : 8;
          const hex = this.s.slice(this.pos, this.pos + len);
          if (!/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== len) this.fail("bad unicode escape");
          out += String.fromCodePoint(Number.parseInt(hex, 16));
          this.pos += len;
        } else this.fail(`bad escape \\${e ?? ""}`);
      } else out += c;
    }
  }
  key(): string {
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    const m = BARE_KEY.exec(this.s.slice(this.pos));
    if (!m) this.fail("expected a key");
    this.pos += m[0].length;
    return m[0];
  }
  value(): TomlValue {
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (c === "[") return this.array();
    if (c === "{") return this.inlineTable();
    const m = /^[^\s,\]}#]+/.exec(this.s.slice(this.pos));
    if (!m) this.fail("expected a value");
    this.pos += m[0].length;
    if (m[0] === "true" || m[0] === "false") return m[0] === "true";
    if (/^[+-]?(\d[\d_]*)(\.\d[\d_]*)?([eE][+-]?\d+)?$/.test(m[0])) return Number(m[0].replace(/_/g, ""));
    return this.fail(`unsupported value ${m[0]}`);
  }
  array(): TomlValue[] {
    this.pos++;
    const out: TomlValue[] = [];
    for (;;) {
      this.skip(true);
      if (this.peek() === "]") return (this.pos++, out);
      out.push(this.value());
      this.skip(true);
      if (this.peek() === ",") this.pos++;
      else if (this.peek() !== "]") this.fail("expected , or ] in an array");
    }
  }
  inlineTable(): TomlTable {
    this.pos++;
    const out: TomlTable = {};
    this.skip(false);
    if (this.peek() === "}") return (this.pos++, out);
    for (;;) {
      this.skip(false);
      const k = this.key();
      this.skip(false);
      if (this.peek() === ".") this.fail("dotted keys are not supported");
      if (this.peek() !== "=") this.fail(`expected = after ${k}`);
      this.pos++;
      this.skip(false);
      if (k in out) this.fail(`duplicate key ${k}`);
      out[k] = this.value();
      this.skip(false);
      if (this.peek() === "}") return (this.pos++, out);
      if (this.peek() !== ",") this.fail("expected , or } in an inline table");
      this.pos++;
    }
  }
}

/** Walks (and creates) the tables of a header path; `[[x]]` appends a new table to array x. */
function enter(root: TomlTable, path: string[], arrayOfTables: boolean, r: Reader): TomlTable {
  let t = root;
  path.forEach((k, i) => {
    const last = i === path.length - 1;
    let next = t[k];
    if (last && arrayOfTables) {
      if (next === undefined) next = t[k] = [];
      if (!Array.isArray(next)) r.fail(`${k} is not an array of tables`);
      const table: TomlTable = {};
      next.push(table);
      t = table;
      return;
    }
    if (next === undefined) next = t[k] = {};
    if (Array.isArray(next)) next = next[next.length - 1];
    if (typeof next !== "object" || next === null || Array.isArray(next)) r.fail(`${path.join(".")} is not a table`);
    t = next as TomlTable;
  });
  return t;
}

/** Parses the Pipfile subset of TOML into nested tables. */
export function parseToml(text: string): TomlTable {
  const r = new Reader(text.replace(/^\uFEFF/, ""));
  const root: TomlTable = {};
  let current = root;
  for (;;) {
    r.skip(true);
    if (r.done) return root;
    if (r.peek() === "[") {
      r.pos++;
      const double = r.peek() === "[";
      if (double) r.pos++;
      const path: string[] = [];
      for (;;) {
        r.skip(false);
        path.push(r.key());
        r.skip(false);
        if (r.peek() !== ".") break;
        r.pos++;
      }
      if (r.peek() !== "]" || (double && r.ahead(2) !== "]]")) r.fail("unterminated table header");
      r.pos += double ? 2 : 1;
      current = enter(root, path, double, r);
      r.endOfLine();
      continue;
    }
    const k = r.key();
    r.skip(false);
    if (r.peek() === ".") r.fail("dotted keys are not supported");
    if (r.peek() !== "=") r.fail(`expected = after ${k}`);
    r.pos++;
    r.skip(false);
    if (k in current) r.fail(`duplicate key ${k}`);
    current[k] = r.value();
    r.endOfLine();
  }
}
