import type { BuildResult, BuildSpec } from "../../protocol/build.ts";
import { appUser, type DynoUser } from "../dyno-user.ts";
import type { SandboxHost } from "../sandbox/index.ts";
import { BuildError } from "./exec.ts";
import type { BuildIO } from "./io.ts";
import type { PythonBuildSettings } from "./python.ts";
import { runBuild } from "./runner.ts";
import { removeStaleWorkspaces } from "./workspace.ts";

/** How the agent runs builds. */
export interface BuilderOptions {
  workDir: string;
  /** The base dyno user; each build runs as its app's own uid derived from it. */
  user: DynoUser | null;
  sandboxes: SandboxHost | null;
  /** The control plane's build endpoints for one build. */
  ioFor: (spec: BuildSpec) => BuildIO;
  /** Builds running at once on this host; more wait their turn. */
  concurrency?: number;
  /** Where Python builds get packages. */
  python?: PythonBuildSettings;
  log?: (message: string) => void;
}

/** Build ids remembered after they finish, so a repeated command does not build twice. */
const REMEMBERED = 1_000;

/**
 * The agent's builds: each `build` command starts at most once (commands may be repeated),
 * builds of one app run one after another (they share its build cache), and at most
 * `concurrency` run at a time. Stopping cancels what runs; each reports its failure.
 */
export class Builder {
  private readonly known = new Set<string>();
  private readonly running = new Map<string, { controller: AbortController; done: Promise<BuildResult | undefined> }>();
  private readonly appTail = new Map<string, Promise<unknown>>();
  private readonly waiting: (() => void)[] = [];
  private active = 0;
  private stopped = false;
  private cleaned: Promise<void>;

  constructor(private readonly o: BuilderOptions) {
    this.cleaned = removeStaleWorkspaces(o.workDir).catch((err: Error) => this.log(`removing old builds: ${err.message}`));
  }

  /** Starts a build unless this id was seen before; returns whether it was new. */
  start(spec: BuildSpec): boolean {
    if (this.stopped || this.known.has(spec.id)) return false;
    this.known.add(spec.id);
    if (this.known.size > REMEMBERED) this.known.delete(this.known.values().next().value!);
    const controller = new AbortController();
    const previous = this.appTail.get(spec.app_id) ?? Promise.resolve();
    const done = previous.then(async () => {
      await this.cleaned;
      await this.slot();
      try {
        const user = appUser(this.o.user, spec.app_id);
        return await runBuild({
          spec,
          workDir: this.o.workDir,
          user,
          sandboxes: this.o.sandboxes,
          io: this.o.ioFor(spec),
          signal: controller.signal,
          python: this.o.python,
          log: this.o.log,
        });
      } finally {
        this.release();
      }
    });
    const settled = done.catch((err: Error) => {
      this.log(`build ${spec.id} did not run: ${err.message}`);
      return undefined;
    });
    this.running.set(spec.id, { controller, done: settled });
    this.appTail.set(spec.app_id, settled);
    void settled.finally(() => {
      this.running.delete(spec.id);
      if (this.appTail.get(spec.app_id) === settled) this.appTail.delete(spec.app_id);
    });
    return true;
  }

  /** Cancels every build; each still reports its failure before this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.running.values()];
    for (const b of all) b.controller.abort(new BuildError("The build was cancelled: the host agent is stopping"));
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.all(all.map((b) => b.done));
  }

  private async slot(): Promise<void> {
    if (this.active < (this.o.concurrency ?? 2)) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  private log(message: string): void {
    (this.o.log ?? (() => {}))(message);
  }
}
