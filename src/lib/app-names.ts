/** Heroku's app-name rule. */
export const APP_NAME_RE = /^[a-z][a-z0-9-]{1,28}[a-z0-9]$/;

const ADJECTIVES = [
  "ancient", "autumn", "billowing", "bitter", "blue", "bold", "brave", "calm", "cool", "crimson", "damp", "dark",
  "dawn", "delicate", "divine", "dry", "empty", "fierce", "floral", "fragrant", "frosty", "gentle", "green", "hidden",
  "holy", "icy", "jolly", "late", "lingering", "little", "lively", "long", "lucky", "misty", "morning", "muddy",
  "nameless", "noble", "old", "patient", "polished", "proud", "purple", "quiet", "rapid", "red", "restless", "rough",
  "secret", "serene", "shy", "silent", "small", "snowy", "solitary", "sparkling", "still", "sweet", "tranquil", "twilight",
  "wandering", "warm", "weathered", "white", "wild", "winter", "wispy", "young",
];
const NOUNS = [
  "bird", "breeze", "brook", "bush", "butterfly", "cherry", "cloud", "darkness", "dawn", "dew", "dream", "dust",
  "feather", "field", "fire", "firefly", "flower", "fog", "forest", "frog", "frost", "glade", "glitter", "grass",
  "harbor", "haze", "hill", "lake", "leaf", "meadow", "moon", "morning", "mountain", "night", "paper", "pine",
  "pond", "rain", "resonance", "river", "sea", "shadow", "shape", "silence", "sky", "smoke", "snow", "sound",
  "star", "sun", "sunset", "surf", "thunder", "tree", "violet", "voice", "water", "waterfall", "wave", "wildflower",
  "wind", "wood",
];

const pick = <T>(list: readonly T[]) => list[crypto.getRandomValues(new Uint32Array(1))[0]! % list.length]!;

/** A random name in Heroku's style, `sleepy-lake-48213`; always matches APP_NAME_RE. */
export function randomAppName(): string {
  const n = 10000 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 90000);
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${n}`;
}
