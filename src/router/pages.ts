import { html } from "hono/html";

const page = (title: string, heading: string, body: string) => html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <style>
      body { font-family: system-ui, sans-serif; background: #f7f8fb; color: #1f2430; margin: 0; }
      main { max-width: 36rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
      h1 { font-size: 1.5rem; margin-top: 0; }
    </style>
  </head>
  <body>
    <main><h1>${heading}</h1><p>${body}</p></main>
  </body>
</html>`;

/** What an app shows before its first deploy. */
export const welcomePage = (app: string) =>
  page(
    "dynoplane | Welcome to your new app!",
    "Welcome to your new app!",
    `${app} is ready. Push your code with git push heroku main and it will answer here.`,
  );

/** What an unknown app host shows. */
export const noSuchAppPage = () =>
  page("dynoplane | No such app", "There's nothing here, yet.", "No app is configured at this address. Check the app name and try again.");

/** Heroku's "Application error" page, shown with every H-code error. */
export const applicationErrorPage = () =>
  page(
    "Application Error",
    "Application error",
    "An error occurred in the application and your page could not be served. If you are the application owner, check your logs for details. You can do this from the dynoplane CLI with the command heroku logs --tail",
  );

/** Heroku's maintenance page, shown while an app's maintenance mode is on (H80). */
export const maintenancePage = () =>
  page("Offline for Maintenance", "Offline for Maintenance", "This app is undergoing maintenance right now. Please check back later.");

/** What visitors of an eco app see while its owner's eco dyno hours are spent (H82). */
export const quotaExhaustedPage = () =>
  page(
    "Application Sleeping",
    "This app is sleeping",
    "Its owner's eco dyno hours for this month are used up. It will wake again next month. If you are the application owner, heroku ps shows your remaining hours.",
  );
