import { raw } from "hono/html";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { appHref, href, type DashboardCall, type Flash } from "./request.ts";

/** What every page's frame needs from the request. */
export interface Frame {
  title: string;
  email: string | null;
  csrf: string;
  flash: Flash | null;
}

/** The frame of the current request, titled `title`. */
export const frameOf = (c: DashboardCall, title: string): Frame => ({
  title,
  email: c.var.session?.actor.email ?? null,
  csrf: c.var.csrf,
  flash: c.var.flash,
});

/** The hidden field that proves a form came from one of our pages. */
export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="_csrf" value={token} />;

/** A form that posts to `action` with the CSRF token; `children` are its fields and button. */
export const PostForm: FC<PropsWithChildren<{ action: string; csrf: string; class?: string; label?: string }>> = (p) => (
  <form method="post" action={p.action} class={p.class} aria-label={p.label}>
    <Csrf token={p.csrf} />
    {p.children}
  </form>
);

const FlashBanner: FC<{ flash: Flash | null }> = ({ flash }) =>
  flash ? (
    <p class={`flash flash-${flash.kind}`} role={flash.kind === "error" ? "alert" : "status"}>
      {flash.text}
    </p>
  ) : null;

/** The page frame: skip link, header with navigation and sign-out, the flash message, then the content. */
export const Layout: FC<PropsWithChildren<{ frame: Frame; current?: "apps" | "account" }>> = ({ frame, current, children }) => (
  <>
    {raw("<!doctype html>")}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${frame.title} · dynoplane`}</title>
        <link rel="stylesheet" href={href("/assets/style.css")} />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="topbar">
          <a class="brand" href={href("/apps")}>
            dynoplane
          </a>
          {frame.email ? (
            <nav aria-label="Main">
              <a href={href("/apps")} aria-current={current === "apps" ? "page" : undefined}>
                Apps
              </a>
              <a href={href("/account")} aria-current={current === "account" ? "page" : undefined}>
                Account
              </a>
              <PostForm action={href("/logout")} csrf={frame.csrf} class="inline">
                <button type="submit" class="link">
                  Sign out <span class="muted">({frame.email})</span>
                </button>
              </PostForm>
            </nav>
          ) : null}
        </header>
        <main id="main" tabindex={-1}>
          <FlashBanner flash={frame.flash} />
          {children}
        </main>
      </body>
    </html>
  </>
);

/** The tabs of an app's page. */
export type AppTab = "overview" | "resources" | "metrics" | "activity" | "logs" | "access" | "settings";
const TABS: Array<[AppTab, string, string]> = [
  ["overview", "Overview", ""],
  ["resources", "Resources", "resources"],
  ["metrics", "Metrics", "metrics"],
  ["activity", "Activity", "activity"],
  ["logs", "Logs", "logs"],
  ["access", "Access", "access"],
  ["settings", "Settings", "settings"],
];

/** An app page: the app's name, its tabs, then the tab's content. */
export const AppFrame: FC<PropsWithChildren<{ frame: Frame; app: string; tab: AppTab }>> = ({ frame, app, tab, children }) => (
  <Layout frame={frame} current="apps">
    <p class="crumbs">
      <a href={href("/apps")}>Apps</a> / <span>{app}</span>
    </p>
    <h1>{app}</h1>
    <nav class="tabs" aria-label="App sections">
      {TABS.map(([key, label, path]) => (
        <a href={appHref(app, path)} aria-current={key === tab ? "page" : undefined}>
          {label}
        </a>
      ))}
    </nav>
    <section class="panel">{children}</section>
  </Layout>
);

/** A centred card, for the sign-in, sign-up and CLI approval pages. */
export const Card: FC<PropsWithChildren<{ frame: Frame; heading: string }>> = ({ frame, heading, children }) => (
  <Layout frame={frame}>
    <div class="card">
      <h1>{heading}</h1>
      {children}
    </div>
  </Layout>
);

/** A labelled `<dl>` row. */
export const Fact: FC<{ term: string; children?: Child }> = ({ term, children }) => (
  <div class="fact">
    <dt>{term}</dt>
    <dd>{children}</dd>
  </div>
);

/** A time in the reader's terms, with the exact instant in `datetime`. */
export const Time: FC<{ at: Date }> = ({ at }) => <time datetime={at.toISOString()}>{at.toISOString().replace("T", " ").slice(0, 16)} UTC</time>;
