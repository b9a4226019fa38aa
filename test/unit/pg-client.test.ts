import { describe, expect, it } from "vitest";
import { pgMajor } from "../../src/local/pg-client.ts";

describe("pgMajor", () => {
  it.each<[string, number]>([
    ["pg_dump (PostgreSQL) 18.6", 18],
    ["pg_dump (PostgreSQL) 18.6\n", 18],
    ["pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15],
    ["pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15],
    ["pg_dump (PostgreSQL) 17.2 (Ubuntu 17.2-1.pgdg22.04+1)", 17],
    ["pg_dump (PostgreSQL) 16.4 (Homebrew)", 16],
    ["postgres (PostgreSQL) 18.4", 18],
    ["pg_dump (PostgreSQL) 18beta1", 18],
    ["pg_dump (PostgreSQL) 19devel", 19],
    ["pg_dump (PostgreSQL) 9.6.24", 9],
  ])("reads %j as %i", (output, major) => {
    expect(pgMajor(output)).toBe(major);
  });

  it.each(["", "pg_dump: command not found", "pg_dump (PostgreSQL)", "pg_dump (PostgreSQL) devel", "pg_dump 18.6", "pg_dump (PostgreSQL) 0.1"])(
    "finds no version in %j",
    (output) => {
      expect(pgMajor(output)).toBeNull();
    },
  );
});
