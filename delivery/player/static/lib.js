// The player's foundations: shared state, the API client, messages, DOM and format helpers.
// Every other module imports this one; it imports only the queue model.

import { Queue } from "./queue.js";

export const $ = (id) => document.getElementById(id);
export const TOKEN_KEY = "audiocdn.player.token";
export const USER_KEY = "audiocdn.player.user";

export const state = {
  config: null,
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  results: [],
  forYou: [],
  queue: new Queue(),
  current: null, // {track, context, answer, bitrate}
  playlists: [],
  playlist: null, // the open playlist object (with snapshot_id)
  playlistItems: [],
  collaborators: [],
  play: null, // the listening session being measured for POST /v1/me/plays
  quality: sessionStorage.getItem("audiocdn.player.quality") || "auto",
  replayGain: sessionStorage.getItem("audiocdn.player.rg") !== "off",
  timing: { urlMs: null, firstAudioMs: null },
  audio: null, // {ctx, source, gain, analyser}
  library: false, // whether delivery serves /v1/library
};

// Late-bound calls between modules (set by player.js), so the modules need not import
// each other in a circle.
export const hooks = {
  playQueued: async () => {},
  renderQueue: () => {},
  trackRow: () => null,
  saveSession: () => {},
  renderBitrate: () => {},
};

// -- the API -----------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    return `${this.message} (${this.status} ${this.code})`;
  }
}

export async function errorFrom(response) {
  // Every part answers {"error": {"status", "code", "message"}}; anything else
  // (a proxy's HTML page) still becomes a readable message.
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    /* not JSON */
  }
  const e = body && body.error;
  if (e && typeof e.message === "string") {
    return new ApiError(e.status || response.status, e.code || "error", e.message);
  }
  return new ApiError(response.status, "http_error", response.statusText || "request failed");
}

export async function api(method, path, { query, body, auth = true, keepalive = false, retry = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  } catch (err) {
    throw new ApiError(0, "network_error", `cannot reach ${url.host}: ${err.message}`);
  }
  if (response.status === 401 && auth && retry && (await refreshDevToken())) {
    return api(method, path, { query, body, auth, keepalive, retry: false });
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** A path + query of an absolute `next` URL of a paging object (same origin). */
export function relative(href) {
  const u = new URL(href);
  return u.pathname + u.search;
}

export async function refreshDevToken() {
  // A dev token expired mid-session: mint a new one for the same demo user.
  const user = sessionStorage.getItem(USER_KEY);
  if (!state.config || !state.config.dev_mode || !user) return false;
  try {
    const answer = await api("POST", "/v1/dev/token", { body: { user_id: user }, auth: false });
    setToken(answer.access_token, user);
    return true;
  } catch (_) {
    return false;
  }
}

export function setToken(token, user) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (user) sessionStorage.setItem(USER_KEY, user);
  else if (!token) sessionStorage.removeItem(USER_KEY);
}

// -- messages ----------------------------------------------------------------------

export function showError(err) {
  const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
  $("error-text").textContent = text;
  $("error").hidden = false;
  console.warn("player:", text);
}

export function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

export function say(text) {
  $("status").textContent = text;
}

export function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      showError(err);
    }
  };
}

// -- small pure helpers --------------------------------------------------------------

/** One shape for a track, whichever API it came from (search and playlists answer
 *  Spotify-shaped tracks, the library flat ones). */
export function normTrack(t) {
  if (!t || t.kind === "track") return t;
  const artists = Array.isArray(t.artists) ? t.artists : [];
  const album = t.album && typeof t.album === "object" ? t.album : null;
  return {
    kind: "track",
    id: t.id,
    title: t.title || t.name || t.id,
    artist: t.artist || artists.map((a) => a.name).join(", "),
    artist_id: t.artist_id || (artists[0] && artists[0].id) || null,
    album: album ? album.name : t.album || "",
    album_id: t.album_id || (album && album.id) || null,
    duration_ms: typeof t.duration_ms === "number" ? t.duration_ms : null,
    plays: typeof t.plays === "number" ? t.plays : typeof t.play_count === "number" ? t.play_count : null,
    art: t.art && t.art.thumbnail_url ? { url: t.art.url, thumbnail_url: t.art.thumbnail_url } : null,
    uri: t.uri || `audiocdn:track:${t.id}`,
    playable: t.is_playable !== false,
  };
}

export function formatDuration(ms) {
  if (typeof ms !== "number" || !isFinite(ms)) return "";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function formatClock(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds) || seconds < 0) return "0:00";
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function formatDb(db) {
  return `${db > 0 ? "+" : db < 0 ? "−" : "±"}${Math.abs(db).toFixed(1)} dB`;
}

export function timeAgo(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("aria-") || !(k in node)) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** A cover: the image when there is art, otherwise a neutral block (no fetched
 *  placeholder). A thumbnail whose signed URL expired falls back to the block too. */
export function cover(art, { size = "", label = "" } = {}) {
  const box = el("div", { class: `cover ${size}`.trim(), "aria-hidden": "true" });
  const src = art && (art.thumbnail_url || art.url);
  if (src) {
    const img = el("img", { src, alt: label, loading: "lazy", decoding: "async" });
    img.addEventListener("error", () => img.remove());
    box.append(img);
    box.classList.add("has-art");
  }
  return box;
}
