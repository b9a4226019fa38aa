import { describe, expect, it } from "vitest";
import { runClock } from "../../src/cron/clock.ts";
import { type BudgetInput, bedtimeStart, DAY_S, inBedtime, planKeepAlive, projectMonth } from "../../src/services/eco/bedtime.ts";
import { ecoPoolSeconds, monthStart, nextMonthStart } from "../../src/services/eco/eco.ts";

const HOUR = 3600;
const input = (over: Partial<BudgetInput> = {}): BudgetInput => ({
  now: new Date(Date.UTC(2027, 1, 1)),
  poolS: 550 * HOUR,
  usedS: 0,
  idleS: 1800,
  intervalS: 600,
  otherRate: 0,
  apps: [{ appId: "a", dynos: 1, traffic: null, startHour: null }],
  ...over,
});

describe("the keep-alive budget", () => {
  it("gives one app a month of February a bedtime that keeps the pool above its margin", () => {
    const plan = planKeepAlive(input());
    // 550 h less the margin over 28 days: about 19.5 h awake a day.
    expect(plan.awakeSPerDay).toBeCloseTo((550 * HOUR - HOUR) / 28, 0);
    const bed = plan.bedtimes.get("a")!;
    // Awake = pings + the idle tail (40 min); bedtime rounded up to 10-minute steps.
    const pingMin = (plan.awakeSPerDay - 2400) / 60;
    expect(bed.lengthMin).toBe(Math.ceil((1440 - pingMin) / 10) * 10);
    expect(bed.lengthMin * 60 + plan.awakeSPerDay - 2400).toBeGreaterThanOrEqual(DAY_S);
  });

  it("has no bedtime when the pool covers the month around the clock", () => {
    const plan = planKeepAlive(input({ poolS: 1000 * HOUR }));
    expect(plan.awakeSPerDay).toBe(DAY_S);
    expect(plan.bedtimes.get("a")).toEqual({ startMin: expect.any(Number), lengthMin: 0 });
    expect(inBedtime(plan.bedtimes.get("a")!, new Date())).toBe(false);
  });

  it("shares the pool between an account's apps, counting each one's dynos", () => {
    const apps = [
      { appId: "a", dynos: 1, traffic: null, startHour: null },
      { appId: "b", dynos: 2, traffic: null, startHour: null },
    ];
    const plan = planKeepAlive(input({ apps }));
    expect(plan.awakeSPerDay).toBeCloseTo((550 * HOUR - 3 * HOUR) / 3 / 28, 0);
  });

  it("stops pinging altogether when what is left is only the margin, or less", () => {
    const plan = planKeepAlive(input({ usedS: 549.5 * HOUR }));
    expect(plan.awakeSPerDay).toBe(0);
    expect(plan.bedtimes.get("a")!.lengthMin).toBe(1440);
    expect(inBedtime(plan.bedtimes.get("a")!, new Date())).toBe(true);
  });

  it("leaves room for the account's other eco apps at their pace", () => {
    const alone = planKeepAlive(input());
    const shared = planKeepAlive(input({ otherRate: 0.5 }));
    expect(shared.awakeSPerDay).toBeCloseTo(alone.awakeSPerDay - 0.5 * DAY_S, 0);
  });

  it("puts bedtime in the app's quietest hours, the owner's hour, or around 04:00 UTC", () => {
    const busyDay = Array.from({ length: 24 }, (_, h) => (h >= 13 && h < 17 ? 0 : 10));
    expect(bedtimeStart({ traffic: busyDay, startHour: null }, 240)).toBe(13 * 60);
    expect(bedtimeStart({ traffic: busyDay, startHour: 22 }, 240)).toBe(22 * 60);
    // Too little history: centred on 04:00.
    expect(bedtimeStart({ traffic: busyDay.map(() => 1), startHour: null }, 240)).toBe(2 * 60);
    expect(bedtimeStart({ traffic: null, startHour: null }, 600)).toBe(23 * 60);
  });

  it("knows a window that wraps past midnight", () => {
    const bed = { startMin: 23 * 60, lengthMin: 180 };
    expect(inBedtime(bed, new Date(Date.UTC(2027, 1, 3, 23, 30)))).toBe(true);
    expect(inBedtime(bed, new Date(Date.UTC(2027, 1, 3, 1, 59)))).toBe(true);
    expect(inBedtime(bed, new Date(Date.UTC(2027, 1, 3, 2, 0)))).toBe(false);
    expect(inBedtime(bed, new Date(Date.UTC(2027, 1, 3, 22, 59)))).toBe(false);
  });

  it("projects the month with the plan, around the clock, and without keep-alive", () => {
    const now = new Date(Date.UTC(2027, 1, 15));
    const i = input({ now, usedS: 250 * HOUR, otherRate: 0.25 });
    const p = projectMonth(i, planKeepAlive(i));
    expect(p.plannedS).toBeLessThanOrEqual(i.poolS);
    expect(p.roundTheClockS).toBeCloseTo(250 * HOUR + 14 * DAY_S * 1.25, 0);
    expect(p.withoutKeepAliveS).toBeCloseTo(250 * HOUR + 14 * DAY_S * 0.25, 0);
  });
});

describe("the month and the pool", () => {
  it("are calendar months in UTC, and the pool follows the account and the configuration", () => {
    const t = new Date("2026-12-31T23:59:59.500Z");
    expect(monthStart(t).toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect(nextMonthStart(t).toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(ecoPoolSeconds({}, { verified: false })).toBe(550 * HOUR);
    expect(ecoPoolSeconds({}, { verified: true })).toBe(1000 * HOUR);
    expect(ecoPoolSeconds({ ECO_DYNO_HOURS: "20", ECO_DYNO_HOURS_VERIFIED: "40" }, { verified: false })).toBe(20 * HOUR);
    expect(ecoPoolSeconds({ ECO_DYNO_HOURS: "nonsense" }, { verified: false })).toBe(550 * HOUR);
  });
});

describe("a scheduled run's clock", () => {
  it("is the scheduled time, unless that is further from the wall clock than allowed", () => {
    const wall = Date.UTC(2026, 11, 2, 12, 0);
    expect(runClock(wall - 4_000, {}, wall).getTime()).toBe(wall - 4_000);
    // A run fired by hand for next year acts now.
    expect(runClock(wall + 365 * DAY_S * 1000, {}, wall).getTime()).toBe(wall);
    expect(runClock(wall + 365 * DAY_S * 1000, { CRON_CLOCK_MAX_SKEW_S: String(400 * DAY_S) }, wall).getTime()).toBe(wall + 365 * DAY_S * 1000);
    expect(runClock(Number.NaN, {}, wall).getTime()).toBe(wall);
  });
});
