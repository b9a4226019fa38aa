#!/usr/bin/env node
// The operator command. Runs the TypeScript sources directly through tsx.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/index.ts");
