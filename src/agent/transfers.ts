import { execFile } from "node:child_process";
import path from "node:path";
import { PassThrough, type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { promisify } from "node:util";
import { DUMP_PART_BYTES, transferPath, type TransferResult, type TransferSpec } from "../protocol/transfer.ts";
import { abortReason, runStep } from "./builder/exec.ts";
import { send } from "./builder/io.ts";
import type { HostRequest } from "./control-plane.ts";
import { appUser, type DynoUser } from "./dyno-user.ts";
import type { Sandbox, SandboxHost } from "./sandbox/index.ts";
import { ROOT_ENV } from "./sandbox/run.ts";

const execFileAsync = promisify(execFile);

/** What a transfer's sandbox gets: pg_dump and pg_restore stream, so little memory and no disk of note. */
export const TRANSFER_LIMITS = { diskMb: 64, memoryMb: 512, pids: 64, cpuWeight: 100 };

/** Schemas of the platform's own in every database (pg_stat_statements' home, Heroku's helpers): not the tenant's to back up. */
export const PLATFORM_SCHEMAS = ["_heroku", "dynoplane_stats"];

/** The extension the platform makes in every database (in PLATFORM_SCHEMAS); pg_dump 17 and newer leave it out. */
const PLATFORM_EXTENSIONS = ["pg_stat_statements"];

/** Log lines a transfer keeps (its last ones). */
const KEPT_LINES = 1_000;

/** How the agent runs Postgres transfers. */
export interface TransfersOptions {
  /** The base dyno user; each transfer runs as its app's own uid derived from it. */
  user: DynoUser | null;
  sandboxes: SandboxHost | null;
  /** A request to the control plane's agent endpoints, with the host secret. */
  hostRequest: (path: string) => HostRequest;
  /** The directory holding pg_dump and pg_restore of this major version or newer. */
  pgClient: (major: number) => Promise<string>;
  log?: (message: string) => void;
}

/** Transfer ids remembered after they finish, so a repeated command does not run twice. */
const REMEMBERED = 1_000;

/**
 * The agent's Postgres transfers (PGBackups, src/protocol/transfer.ts). A backup runs
 * `pg_dump`, a restore `pg_restore`, and a copy one then the other, in a sandbox of the
 * app's own uid that reaches only what its dynos reach, connected with the databases' own
 * credentials. The dump streams through the agent and never touches a disk the sandbox
 * sees: pg_dump writes to its stdout (uploaded in parts as it comes), pg_restore reads its
 * stdin (the download, or a copy's pg_dump). Each transfer id runs at most once;
 * cancelling or stopping ends what runs and reports it failed.
 */
export class Transfers {
  private readonly known = new Set<string>();
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private stopped = false;

  constructor(private readonly o: TransfersOptions) {}

  /** Starts a transfer unless this id was seen before; returns whether it was new. */
  start(spec: TransferSpec): boolean {
    if (this.stopped || this.known.has(spec.id)) return false;
    this.known.add(spec.id);
    if (this.known.size > REMEMBERED) this.known.delete(this.known.values().next().value!);
    const controller = new AbortController();
    const done = this.run(spec, controller.signal).catch((err: Error) => this.log(`transfer ${spec.id}: ${err.message}`));
    this.running.set(spec.id, { controller, done });
    void done.finally(() => this.running.delete(spec.id));
    return true;
  }

  /** Ends a running transfer; it reports itself failed (the control plane has already said canceled). */
  cancel(id: string): void {
    this.running.get(id)?.controller.abort(new Error("The transfer was canceled."));
  }

  /** Ends every running transfer and waits for their reports. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { controller } of this.running.values()) controller.abort(new Error("The host stopped during the transfer."));
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  private log(message: string): void {
    (this.o.log ?? console.error)(message);
  }

  private async run(spec: TransferSpec, cancel: AbortSignal): Promise<void> {
    const at = (suffix: string) => this.o.hostRequest(transferPath(spec.id, suffix));
    const logs: TransferResult["logs"] = [];
    const line = (message: string) => {
      logs.push({ at: Date.now(), message: message.slice(0, 4096) });
      if (logs.length > KEPT_LINES) logs.shift();
    };
    const tooLarge = new AbortController();
    // A step that failed (an upload refused, pg_restore ended) ends the others: none waits on a reader or writer that is gone.
    const broken = new AbortController();
    const breakOff = (err: unknown) => {
      if (!broken.signal.aborted) broken.abort(err instanceof Error ? err : new Error(String(err)));
    };
    const signal = AbortSignal.any([cancel, tooLarge.signal, broken.signal, AbortSignal.timeout(spec.timeout_s * 1000)]);
    let result: TransferResult;
    let sandbox: Sandbox | null = null;
    try {
      const bin = await this.o.pgClient(spec.pg_major);
      const user = appUser(this.o.user, spec.app_id);
      if (this.o.sandboxes && user) {
        sandbox = await this.o.sandboxes.openSandbox({
          name: `transfer-${spec.id.slice(0, 8)}-${Date.now().toString(36)}`,
          user,
          lowerDir: null,
          diskMb: TRANSFER_LIMITS.diskMb,
          limits: { memoryMb: TRANSFER_LIMITS.memoryMb, pids: TRANSFER_LIMITS.pids, cpuWeight: TRANSFER_LIMITS.cpuWeight },
        });
      }
      // The tools' own prefix (bin/ and the libpq it was built with), read-only at the same path.
      const prefix = path.dirname(bin);
      const step = (db: TransferSpec["database"]) => ({
        env: toolEnv(db, bin),
        user,
        signal,
        onLine: line,
        ...(sandbox ? { sandbox: { box: sandbox, readOnly: [[prefix, prefix]] as [string, string][], readWrite: [] } } : {}),
      });
      /** pg_dump of `db` into `out` (at most the spec's bytes); resolves to how many it wrote. */
      const dumpFrom = async (db: TransferSpec["database"], out: Writable): Promise<number> => {
        line(`pg_dump of ${db.database} started`);
        const limit = new SizeLimit(spec.max_bytes, () => tooLarge.abort(new Error(`The dump is larger than its plan allows (${spec.max_bytes} bytes).`)));
        const written = new Promise<void>((resolve, reject) => out.on("close", resolve).on("finish", resolve).on("error", reject));
        written.catch(breakOff);
        limit.pipe(out);
        const args = [
          "--format=custom",
          "--verbose",
          "--no-password",
          ...PLATFORM_SCHEMAS.map((s) => `--exclude-schema=${s}`),
          // Older pg_dumps keep it; restoring such a dump then warns that it exists already.
          ...((await toolMajor(path.join(bin, "pg_dump"))) >= 17 ? PLATFORM_EXTENSIONS.map((e) => `--exclude-extension=${e}`) : []),
        ];
        const { status } = await runStep(path.join(bin, "pg_dump"), args, { ...step(db), stdoutTo: limit });
        await written;
        if (status !== 0) throw new Error(`pg_dump failed (exit status ${status})${lastLine(logs)}`);
        line(`pg_dump finished: ${limit.bytes} bytes`);
        return limit.bytes;
      };
      /** pg_restore of the archive `from` streams into `db`; resolves to the errors it went on from (warnings). */
      const restoreInto = async (db: TransferSpec["database"], from: Readable): Promise<number> => {
        line(`pg_restore into ${db.database} started`);
        // A fresh database (the control plane's): nothing to clean first; it takes the add-on's place once this succeeded.
        const args = ["--verbose", "--no-owner", "--no-acl", "--no-password", `--dbname=${db.database}`];
        const { status } = await runStep(path.join(bin, "pg_restore"), args, { ...step(db), stdin: from });
        // pg_restore goes on past failed statements and says how many it ignored: those are warnings.
        const ignored = logs.map((l) => /errors ignored on restore: (\d+)/.exec(l.message)).find((m) => m);
        if (status !== 0 && !ignored) throw new Error(`pg_restore failed (exit status ${status})${lastLine(logs)}`);
        line("pg_restore finished");
        return ignored ? Number(ignored[1]) : 0;
      };
      if (spec.kind === "backup") {
        // Uploaded as it is written, in parts of one size (the blob store's multipart upload).
        const parts = new PartUploader(DUMP_PART_BYTES, async (n, part) => {
          await (await send(at(`/dump/parts/${n}`), "PUT", { body: part, size: part.length, type: "application/octet-stream", signal })).dump();
        });
        const size = await dumpFrom(spec.database, parts);
        result = { succeeded: true, logs, processed_bytes: size, warnings: 0, error: null };
      } else if (spec.kind === "restore") {
        // Restored as it downloads.
        const counted = new Counter();
        const body = await send(at("/dump"), "GET", { signal });
        // A download cut short ends pg_restore's input early: it fails on the truncated archive.
        body.on("error", (err) => counted.destroy(err));
        const warnings = await restoreInto(spec.database, body.pipe(counted));
        result = { succeeded: true, logs, processed_bytes: counted.bytes, warnings, error: null };
      } else {
        if (!spec.source) throw new Error("A copy names no source database.");
        // pg_dump's archive goes straight into pg_restore; either failing fails the other.
        const pipe = new PassThrough();
        const [size, warnings] = await Promise.all([
          dumpFrom(spec.source, pipe).catch((err: Error) => {
            pipe.destroy(err);
            breakOff(err);
            throw err;
          }),
          restoreInto(spec.database, pipe).catch((err: Error) => {
            breakOff(err);
            throw err;
          }),
        ]);
        result = { succeeded: true, logs, processed_bytes: size, warnings, error: null };
      }
    } catch (err) {
      const error = signal.aborted ? abortReason(signal).message : (err as Error).message;
      line(`error: ${error}`);
      result = { succeeded: false, logs, processed_bytes: 0, warnings: 0, error: error.slice(0, 2048) };
    } finally {
      await sandbox?.dispose().catch((err: Error) => this.log(`transfer ${spec.id}: removing its sandbox: ${err.message}`));
    }
    const body = Buffer.from(JSON.stringify(result));
    await (await send(at("/result"), "POST", { body, size: body.length, type: "application/json" })).dump();
  }
}

/** A tool's environment: a fixed PATH and the database's address and credentials (libpq's PG* variables). */
function toolEnv(db: TransferSpec["database"], bin: string): Record<string, string> {
  return {
    PATH: `${bin}:/usr/bin:/bin`,
    LANG: "C.UTF-8",
    HOME: "/tmp",
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGDATABASE: db.database,
    PGUSER: db.user,
    PGPASSWORD: db.password,
    PGAPPNAME: "dynoplane pgbackups",
    PGCONNECT_TIMEOUT: "10",
    // A tool ended while its session waits on a lock (a cancel): the server notices within seconds, not when the lock is free.
    PGOPTIONS: "-c client_connection_check_interval=2000",
  };
}

const majors = new Map<string, Promise<number>>();

/** A tool's major version, from its `--version` (0 when it says none). */
function toolMajor(tool: string): Promise<number> {
  let known = majors.get(tool);
  if (!known) {
    known = execFileAsync(tool, ["--version"], { env: ROOT_ENV }).then(
      ({ stdout }) => Number(/\(PostgreSQL\) (\d+)/.exec(stdout)?.[1] ?? 0),
      () => 0,
    );
    majors.set(tool, known);
  }
  return known;
}

const lastLine = (logs: TransferResult["logs"]) => {
  const last = logs.at(-1)?.message;
  return last ? `: ${last}` : "";
};

/**
 * Cuts what is written into parts of `partBytes` (the last shorter) and hands each to
 * `upload` in order, one at a time: the writer waits while a part uploads.
 */
export class PartUploader extends Writable {
  private chunks: Buffer[] = [];
  private held = 0;
  private n = 0;

  constructor(
    private readonly partBytes: number,
    private readonly upload: (n: number, part: Buffer) => Promise<void>,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.held += chunk.length;
    void this.sendFull().then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    void this.sendFull()
      // Nothing written (a pg_dump that failed before its header) is no part at all: the tool's own failure is the reason.
      .then(() => (this.held ? this.send(Buffer.concat(this.chunks, this.held)) : undefined))
      .then(() => done(), done);
  }

  /** Sends every whole part held; what is left over stays for the next. */
  private async sendFull(): Promise<void> {
    while (this.held >= this.partBytes) {
      const all = Buffer.concat(this.chunks, this.held);
      const rest = all.subarray(this.partBytes);
      this.chunks = rest.length ? [rest] : [];
      this.held = rest.length;
      await this.send(all.subarray(0, this.partBytes));
    }
  }

  private send(part: Buffer): Promise<void> {
    return this.upload(++this.n, part);
  }
}

/** Counts the bytes that pass. */
class Counter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** Passes bytes through until `max`; past it, writes nothing more and calls `onExceeded` once. */
class SizeLimit extends Transform {
  bytes = 0;

  constructor(
    private readonly max: number,
    private readonly onExceeded: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const before = this.bytes;
    this.bytes += chunk.length;
    if (this.bytes <= this.max) done(null, chunk);
    else {
      if (before <= this.max) this.onExceeded();
      done();
    }
  }
}
