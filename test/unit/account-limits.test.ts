import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, platformLimits } from "../../src/services/access/account-limits.ts";

describe("platformLimits", () => {
  it("takes the Worker's variables, and keeps the default for one that is missing or malformed", () => {
    expect(platformLimits({})).toEqual(DEFAULT_LIMITS);
    expect(
      platformLimits({
        ACCOUNT_LIMIT_APPS: "5",
        ACCOUNT_LIMIT_ADDONS: "0",
        ACCOUNT_LIMIT_ONE_OFF_DYNOS: "-3",
        ACCOUNT_LIMIT_DYNOS_PER_APP: "ten",
        ACCOUNT_LIMIT_MEMORY_SHARE: "0.25",
      }),
    ).toEqual({ ...DEFAULT_LIMITS, apps: 5, addons: 0, memoryShare: 0.25 });
    for (const share of ["0", "1.5", "", "half"]) expect(platformLimits({ ACCOUNT_LIMIT_MEMORY_SHARE: share }).memoryShare).toBe(DEFAULT_LIMITS.memoryShare);
  });
});
