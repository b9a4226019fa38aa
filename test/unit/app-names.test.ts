import { describe, expect, it } from "vitest";
import { APP_NAME_RE, randomAppName } from "../../src/lib/app-names.ts";

describe("APP_NAME_RE", () => {
  it.each(["abc", "my-app", "a1b", "app-123", "a".repeat(30), "a--b"])("accepts %j", (name) => {
    expect(APP_NAME_RE.test(name)).toBe(true);
  });

  it.each(["ab", "a".repeat(31), "1app", "-app", "app-", "My-app", "app_name", "app.name", "app name", "appé", ""])("refuses %j", (name) => {
    expect(APP_NAME_RE.test(name)).toBe(false);
  });
});

describe("randomAppName", () => {
  it("always gives a valid name in Heroku's word-word-number style", () => {
    const names = Array.from({ length: 5000 }, randomAppName);
    for (const name of names) {
      expect(name).toMatch(APP_NAME_RE);
      expect(name).toMatch(/^[a-z]+-[a-z]+-[1-9]\d{4}$/);
    }
    // Enough variety that collisions are rare.
    expect(new Set(names).size).toBeGreaterThan(4900);
    expect(new Set(names.map((n) => n.split("-")[0])).size).toBeGreaterThan(20);
    expect(new Set(names.map((n) => n.split("-")[1])).size).toBeGreaterThan(20);
  });
});
