// Our own public API, as the page calls it: URLs relative to the page (so a proxy's path prefix
// just works), the bearer key kept in localStorage, and errors read in OpenAI's shape.

const KEY_STORE = "imagegen.apiKey";
let key = readKey();

export const apiUrl = (path) => new URL(path, document.baseURI).href;

/** Thrown when a call answered 401: the page asks for a key and retries; nothing else to show. */
export class KeyNeeded extends Error {}

export function hasKey() {
  return Boolean(key);
}

function readKey() {
  try { return localStorage.getItem(KEY_STORE) || ""; } catch { return ""; } // storage may be off
}

export function storeKey(value) {
  key = value;
  try { value ? localStorage.setItem(KEY_STORE, value) : localStorage.removeItem(KEY_STORE); } catch { /* kept in memory */ }
}

/** fetch() with the key if there is one. A 401 forgets the key, calls askForKey(message) and
 * throws KeyNeeded; every other answer is returned as it is. */
export async function call(path, init, askForKey) {
  const headers = new Headers(init?.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(apiUrl(path), { ...init, headers });
  if (response.status !== 401) return response;
  const { message } = await errorOf(response);
  const refused = key ? `The key was refused: ${message}` : "This server needs an API key.";
  storeKey("");
  askForKey(refused);
  throw new KeyNeeded(refused);
}

/** The {message, param} of a failed response, whatever sent it (a proxy's HTML page, too). */
export async function errorOf(response) {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text);
    if (error?.message) return error;
  } catch { /* not JSON */ }
  return { message: `${response.status} ${response.statusText}: ${text.slice(0, 300) || "no details"}`, param: null };
}
