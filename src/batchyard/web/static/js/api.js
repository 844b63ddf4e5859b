// The one door to the API: the token from this tab's sessionStorage as a bearer token, the
// DESIGN's error body turned into ApiError, and live events read from a fetch stream (an
// EventSource cannot send an Authorization header, and the token never goes into a URL).

const TOKEN_KEY = "batchyard.token";
const FLASH_KEY = "batchyard.flash";
const ME_KEY = "batchyard.me";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function rememberMe(me) {
  const kept = { name: me.name, role: me.role.name, seesAllBatches: me.role.sees_all_batches };
  sessionStorage.setItem(ME_KEY, JSON.stringify(kept));
  return kept;
}

/** Keeps the token and who it belongs to (GET /me) for this tab. */
export function saveToken(token, me) {
  sessionStorage.setItem(TOKEN_KEY, token);
  rememberMe(me);
}

/** Who this tab is signed in as: {name, role, seesAllBatches}, from GET /me once per tab. */
export async function whoAmI() {
  const kept = JSON.parse(sessionStorage.getItem(ME_KEY) || "null");
  // Kept by an older dashboard without seesAllBatches: ask again.
  if (kept && typeof kept.seesAllBatches === "boolean") return kept;
  return rememberMe(await api("/me"));
}

async function showWho() {
  const who = document.getElementById("who");
  if (!who) return;
  const me = await whoAmI();
  who.textContent = `${me.name} · ${me.role}`;
  who.title = `Signed in as ${me.name}, role ${me.role}`;
}

/** Where to go back to after signing in: a path on this server only. */
export function safeNext(value) {
  return value && value.startsWith("/") && !value.startsWith("//") ? value : "/";
}

export function goToSignIn() {
  const next = location.pathname + location.search;
  location.replace(`/ui/sign-in?next=${encodeURIComponent(next)}`);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ME_KEY);
  location.assign("/ui/sign-in");
}

/** A message shown on the next page this tab opens (after a redirect). */
export function flash(message) {
  sessionStorage.setItem(FLASH_KEY, message);
}

export function showNotice(message, kind = "error") {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
}

/** Every signed-in page starts here: no token, no page; wires the sign-out button. */
export function startPage() {
  if (!getToken()) {
    goToSignIn();
    return false;
  }
  document.getElementById("sign-out")?.addEventListener("click", signOut);
  showWho().catch(() => {});
  const message = sessionStorage.getItem(FLASH_KEY);
  if (message) {
    sessionStorage.removeItem(FLASH_KEY);
    showNotice(message, "info");
  }
  return true;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && body.error ? body.error : {};
  return new ApiError(
    response.status,
    error.code || "http_error",
    error.message || `The server answered ${response.status}`,
    error.details,
  );
}

/** fetch() with the bearer token; a 401 sends the user to sign in again. */
export async function apiFetch(path, options = {}) {
  const token = options.token ?? getToken();
  const headers = new Headers(options.headers || {});
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401 && !options.token) {
    flash("Your session ended: sign in again.");
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ME_KEY);
    goToSignIn();
  }
  throw error;
}

export async function api(path, options = {}) {
  const init = { ...options };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  }
  const response = await apiFetch(path, init);
  const type = response.headers.get("content-type") || "";
  return type.includes("application/json") ? response.json() : response.text();
}

/** Every dataset the token may see, following GET /datasets' pages (by name). */
export async function allDatasets() {
  const found = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/datasets?${query}`);
    found.push(...page.datasets);
    cursor = page.next_cursor;
  } while (cursor);
  return found;
}

/** Parses a Server-Sent Events body into {event, data, id} messages. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "message", data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (message.data.length) yield { ...message, data: message.data.join("\n") };
          message = { event: "message", data: [], id: null };
        } else if (!line.startsWith(":")) {
          const at = line.indexOf(":");
          const field = at < 0 ? line : line.slice(0, at);
          const text = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
          if (field === "data") message.data.push(text);
          else if (field === "event") message.event = text;
          else if (field === "id") message.id = text;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows /batches/{id}/events until the batch ends or is deleted, reconnecting with backoff.
 * handlers: batch(b), end(b), deleted(), state(text).
 */
export function followBatch(batchId, handlers) {
  const controller = new AbortController();
  let stopped = false;
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      try {
        const response = await apiFetch(`/batches/${encodeURIComponent(batchId)}/events`, {
          headers: { Accept: "text/event-stream" },
          signal: controller.signal,
        });
        handlers.state?.("live");
        for await (const message of readEvents(response.body)) {
          delay = 500;
          if (message.event === "batch") handlers.batch(JSON.parse(message.data));
          if (message.event === "end") {
            handlers.state?.("ended");
            handlers.end?.(JSON.parse(message.data));
            return;
          }
          if (message.event === "deleted") {
            handlers.deleted?.();
            return;
          }
        }
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError && error.status === 404) {
          handlers.deleted?.();
          return;
        }
        if (error instanceof ApiError && error.status < 500) {
          handlers.state?.(error.message);
          return;
        }
      }
      handlers.state?.("reconnecting…");
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  };
  run();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
