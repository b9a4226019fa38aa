import type { FC } from "hono/jsx";
import { type Bedtime, clockTime } from "../services/eco/bedtime.ts";
import type { KeepAliveDecision, KeepAliveReason } from "../services/eco/keep-alive.ts";
import { appHref } from "./request.ts";
import { PostForm, Time, type Frame } from "./layout.tsx";

/** What a scheduled run does with a kept app now, in words. */
export const REASONS: Record<KeepAliveReason, string> = {
  due: "pinged every 10 minutes",
  pinged: "pinged every 10 minutes",
  bedtime: "asleep for the night",
  exhausted: "asleep: the month's eco hours are used up",
  "no-web": "not pinged: no web dynos",
};

export const bedtimeText = (bedtime: Bedtime | null) =>
  !bedtime || bedtime.lengthMin <= 0
    ? "none: the pool lasts around the clock"
    : bedtime.lengthMin >= 1440
      ? "all day: the pool is nearly spent"
      : `${clockTime(bedtime.startMin)}–${clockTime(bedtime.startMin + bedtime.lengthMin)}`;

export const pingText = (a: Pick<KeepAliveDecision, "lastPingedAt" | "lastStatus" | "lastLatencyMs" | "lastError">) =>
  !a.lastPingedAt
    ? "not yet"
    : `${a.lastStatus !== null ? `status ${a.lastStatus}` : a.lastError} in ${a.lastLatencyMs} ms, ${a.lastPingedAt.toISOString().replace("T", " ").slice(0, 16)} UTC`;

/** The keep-alive switch of an app, its bedtime setting and what the pinger last did. */
export const KeepAliveSection: FC<{ frame: Frame; app: string; enabled: boolean; decision: KeepAliveDecision | null; startHour: number | null }> = ({
  frame,
  app,
  enabled,
  decision,
  startHour,
}) => (
  <section class="process" aria-labelledby="keep-alive-heading">
    <h3 id="keep-alive-heading">Keep-alive</h3>
    <p class="muted">
      Pings the app through the router every 10 minutes so its eco dynos do not sleep, with a nightly bedtime that keeps your eco dyno hours from running out
      before the month ends.
    </p>
    {enabled && decision ? (
      <dl>
        <div class="fact">
          <dt>Now</dt>
          <dd>{REASONS[decision.reason]}</dd>
        </div>
        <div class="fact">
          <dt>Bedtime (UTC)</dt>
          <dd>{decision.eco ? bedtimeText(decision.bedtime) : "none: the app is not on eco dynos"}</dd>
        </div>
        <div class="fact">
          <dt>Last ping</dt>
          <dd>
            {decision.lastPingedAt ? <Time at={decision.lastPingedAt} /> : null} {pingText(decision)}
          </dd>
        </div>
      </dl>
    ) : null}
    <PostForm action={appHref(app, "keep-alive")} csrf={frame.csrf} label="Keep-alive">
      <div class="field-row">
        <div>
          <label for="keep-alive-enabled">Keep-alive</label>
          <select id="keep-alive-enabled" name="enabled">
            <option value="on" selected={enabled}>
              On
            </option>
            <option value="off" selected={!enabled}>
              Off
            </option>
          </select>
        </div>
        <div>
          <label for="keep-alive-bedtime">Bedtime starts</label>
          <select id="keep-alive-bedtime" name="bedtime">
            <option value="auto" selected={startHour === null}>
              in the app's quietest hours
            </option>
            {Array.from({ length: 24 }, (_, h) => (
              <option value={String(h)} selected={startHour === h}>
                at {String(h).padStart(2, "0")}:00 UTC
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Save keep-alive</button>
      </div>
    </PostForm>
  </section>
);
