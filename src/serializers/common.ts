/** ISO-8601 without milliseconds, as Heroku writes times. */
export const isoTime = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
export const isoTimeOrNull = (d: Date | null | undefined) => (d ? isoTime(d) : null);

/** Stable ids for the fixed regions, stacks and dyno sizes, so `{ id, name }` references are real UUIDs. */
export const REGION_IDS: Record<string, string> = {
  us: "59accabd-516d-4f0e-83e6-6e3757701145",
  eu: "ed30241c-ed8c-4bb6-9714-61953675d0b4",
};
export const STACK_IDS: Record<string, string> = {
  "heroku-22": "74cfe988-7527-4ca9-9667-77bb2ddd6b5c",
  "heroku-24": "a5ad7a53-8d9c-4a0d-ae0c-4a4f6a3b6a1e",
};
export const DYNO_SIZE_IDS: Record<string, string> = {
  Eco: "06ebd12e-87a5-458a-a3fb-b9f0343b290f",
  Basic: "bbe769fa-b4db-4279-878c-8f71937cb301",
  "Standard-1X": "e724ec47-da81-439f-89ff-f6b39dd3bc29",
  "Standard-2X": "aef849f0-0e3c-4b65-84cd-94f579128fcf",
};
