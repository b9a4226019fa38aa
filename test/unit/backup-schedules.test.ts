import { describe, expect, it } from "vitest";
import { dueDay, knownTimeZone, localTime } from "../../src/services/addons/backup-schedules.ts";
import { backupName } from "../../src/services/addons/transfers.ts";

describe("daily backup schedules", () => {
  it("reads the day and hour in the schedule's time zone", () => {
    const at = new Date("2026-03-01T23:30:00Z");
    expect(localTime("UTC", at)).toEqual({ day: "2026-03-01", hour: 23 });
    // Istanbul is UTC+3 all year: already the next day.
    expect(localTime("Europe/Istanbul", at)).toEqual({ day: "2026-03-02", hour: 2 });
    // New York in winter is UTC-5, in summer UTC-4.
    expect(localTime("America/New_York", at)).toEqual({ day: "2026-03-01", hour: 18 });
    expect(localTime("America/New_York", new Date("2026-07-01T23:30:00Z"))).toEqual({ day: "2026-07-01", hour: 19 });
    // Midnight is hour 0, not 24.
    expect(localTime("UTC", new Date("2026-03-02T00:05:00Z"))).toEqual({ day: "2026-03-02", hour: 0 });
  });

  it("is due once its hour has come on a day it has not run, and not again that day", () => {
    const s = { hour: 2, timezone: "Europe/Istanbul", lastDay: "2026-03-01" };
    expect(dueDay(s, new Date("2026-03-01T22:59:00Z"))).toBeNull(); // 01:59 in Istanbul, the 2nd
    expect(dueDay(s, new Date("2026-03-01T23:00:00Z"))).toBe("2026-03-02"); // 02:00
    // A run that missed the hour still takes that day's backup, later in the day.
    expect(dueDay(s, new Date("2026-03-02T12:00:00Z"))).toBe("2026-03-02");
    expect(dueDay({ ...s, lastDay: "2026-03-02" }, new Date("2026-03-02T12:00:00Z"))).toBeNull();
    expect(dueDay({ ...s, lastDay: null }, new Date("2026-03-01T23:10:00Z"))).toBe("2026-03-02");
  });

  it("never runs a schedule whose time zone the runtime does not know", () => {
    expect(knownTimeZone("Europe/Istanbul")).toBe(true);
    expect(knownTimeZone("UTC")).toBe(true);
    expect(knownTimeZone("Mars/Olympus_Mons")).toBe(false);
    expect(knownTimeZone("")).toBe(false);
    expect(dueDay({ hour: 0, timezone: "Mars/Olympus_Mons", lastDay: null }, new Date())).toBeNull();
  });

  it("names transfers as the CLI does: b for a backup by hand, a for a scheduled one, r for a restore", () => {
    expect(backupName({ kind: "backup", scheduled: false, num: 1 })).toBe("b001");
    expect(backupName({ kind: "backup", scheduled: true, num: 42 })).toBe("a042");
    expect(backupName({ kind: "restore", scheduled: false, num: 1234 })).toBe("r1234");
  });
});
