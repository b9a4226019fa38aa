import { createRequire } from "node:module";

/** This agent's release (the package's version), reported in its heartbeats and instance records. */
export const AGENT_VERSION: string = createRequire(import.meta.url)("../../package.json").version;
