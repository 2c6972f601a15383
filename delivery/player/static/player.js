// audiocdn web player: plain ES module, no build step, no external URL.
//
// It talks to delivery's v1 API with the user's bearer token, exactly like any
// client: search, a signed stream URL per track, playlists, plays and
// friends-listened. The audio itself comes from the URL delivery signed (our
// edge by default, on another origin), played by an <audio crossorigin> element
// routed through Web Audio so ReplayGain can be applied with a GainNode.

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "audiocdn.player.token";
const USER_KEY = "audiocdn.player.user";

const state = {
  config: null,
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  results: [],
  forYou: [],
  radio: [],
  queue: [], // {track, context}
  queueIndex: -1,
  current: null, // {track, context, answer}
  playlists: [],
  playlist: null, // the open playlist object (with snapshot_id)
  playlistItems: [],
  play: null, // the listening session being measured for POST /v1/me/plays
  quality: sessionStorage.getItem("audiocdn.player.quality") || "auto",
  replayGain: sessionStorage.getItem("audiocdn.player.rg") !== "off",
  timing: { urlMs: null, firstAudioMs: null },
  audio: null, // {ctx, source, gain, analyser}
};

// -- the API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    return `${this.message} (${this.status} ${this.code})`;
  }
}

async function errorFrom(response) {
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

async function api(method, path, { query, body, auth = true, keepalive = false, retry = true } = {}) {
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

// -- messages ----------------------------------------------------------------------

function showError(err) {
  const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
  $("error-text").textContent = text;
  $("error").hidden = false;
  console.warn("player:", text);
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      showError(err);
    }
  };
}

// -- small pure helpers --------------------------------------------------------------

/** The gain to apply for a track's loudness: ReplayGain's track gain, lowered when it
 *  would push the true peak above -1 dBTP (clipping prevention). */
export function replayGain(loudness, enabled) {
  const gainDb = loudness && typeof loudness.track_gain_db === "number" ? loudness.track_gain_db : null;
  if (!enabled || gainDb === null) return { available: gainDb !== null, db: 0, linear: 1, limited: false };
  let db = gainDb;
  let limited = false;
  const peak = loudness.true_peak_dbtp;
  if (typeof peak === "number" && db + peak > -1) {
    db = -1 - peak;
    limited = true;
  }
  return { available: true, db, linear: Math.pow(10, db / 20), limited };
}

function formatDuration(ms) {
  if (typeof ms !== "number" || !isFinite(ms)) return "";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function formatDb(db) {
  return `${db > 0 ? "+" : db < 0 ? "−" : "±"}${Math.abs(db).toFixed(1)} dB`;
}

function timeAgo(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function artistsOf(track) {
  return (track.artists || []).map((a) => a.name).join(", ");
}

function hueOf(text) {
  let h = 0;
  for (const c of text || "") h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("aria-") || !(k in node)) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// -- signing in ----------------------------------------------------------------------

async function refreshDevToken() {
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

function setToken(token, user) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (user) sessionStorage.setItem(USER_KEY, user);
  else if (!token) sessionStorage.removeItem(USER_KEY);
}

async function signInDev(event) {
  event.preventDefault();
  clearError();
  const user = $("user-select").value;
  const answer = await api("POST", "/v1/dev/token", { body: { user_id: user }, auth: false });
  setToken(answer.access_token, user);
  await enter();
}

async function signInToken(event) {
  event.preventDefault();
  clearError();
  setToken($("token-input").value.trim(), null);
  $("token-input").value = "";
  await enter();
}

function signOut() {
  finishPlay("sign-out");
  stopAudio();
  setToken(null, null);
  state.me = null;
  state.playlist = null;
  state.playlistItems = [];
  showSignedOut();
  say("Signed out.");
}

function showSignedOut() {
  $("app").hidden = true;
  $("whoami").hidden = true;
  $("signin-dev").hidden = !state.config.dev_mode;
  $("signin-token").hidden = state.config.dev_mode;
}

async function enter() {
  try {
    state.me = await api("GET", "/v1/me");
  } catch (err) {
    setToken(null, null);
    showSignedOut();
    throw err;
  }
  $("me-user").textContent = state.me.user_id;
  $("me-tier").textContent = state.me.tier;
  $("me-bitrates").textContent = `up to ${Math.max(...state.me.entitled_bitrates)} kbps`;
  $("whoami").hidden = false;
  $("signin-dev").hidden = true;
  $("signin-token").hidden = true;
  $("app").hidden = false;
  say(`Signed in as ${state.me.user_id} (${state.me.tier}). Search for a track to play.`);
  $("search-q").focus();
  await Promise.all([loadPlaylists(), loadFollowing(), loadForYou()]);
}

// -- recommendations -----------------------------------------------------------------

async function loadForYou() {
  const page = await api("GET", "/v1/me/recommendations", { query: { limit: 10 } });
  state.forYou = page.items;
  $("for-you-summary").textContent = !page.items.length
    ? "Nothing to recommend yet: play a few tracks."
    : page.source === "popular"
      ? "Popular tracks (your own picks appear after the next recommendation build)."
      : "Picked from what you and listeners like you play.";
  $("for-you").replaceChildren(...state.forYou.map((track, i) => trackRow(track, i, "foryou")));
}

async function startRadio() {
  // The radio's first track is the seed, the one playing: queue the rest after it.
  const seed = state.current.track;
  const answer = await api("GET", `/v1/tracks/${encodeURIComponent(seed.id)}/radio`, {
    query: { limit: 25 },
  });
  state.radio = answer.tracks;
  state.queue = state.radio.map((track) => ({ track, context: "radio" }));
  state.queueIndex = 0;
  const more = state.radio.length - 1;
  say(more ? `Radio: ${more} tracks like “${seed.name || seed.id}” queued.` : "No similar tracks yet.");
}

// -- search ----------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  clearError();
  const q = $("search-q").value.trim();
  if (!q) return;
  const answer = await api("GET", "/v1/search", { query: { q, type: "track", limit: 20 } });
  state.results = answer.tracks.items;
  const n = answer.tracks.total;
  $("results-summary").textContent = n === 0 ? `No track matches “${q}”.` : `${n} track${n === 1 ? "" : "s"} for “${q}”`;
  renderResults();
}

function trackRow(track, index, context, extra = []) {
  const title = track.name || track.id;
  const playing = state.current && state.current.track.id === track.id;
  return el(
    "li",
    { class: `track${playing ? " playing" : ""}`, dataset: { trackId: track.id } },
    el("button", {
      type: "button",
      class: "play",
      "aria-label": `Play ${title}`,
      disabled: track.is_playable === false, // not in the catalogue (any more)
      onclick: guard(() => playFrom(context, index)),
      textContent: playing ? "♪" : "▶",
    }),
    el(
      "div",
      { class: "track-meta" },
      el("span", { class: "track-title", textContent: title }),
      el("span", {
        class: "muted",
        textContent: [artistsOf(track), track.album && track.album.name].filter(Boolean).join(" · "),
      }),
    ),
    el("span", { class: "muted duration", textContent: formatDuration(track.duration_ms) }),
    ...extra,
  );
}

function renderResults() {
  const list = $("results");
  list.replaceChildren(
    ...state.results.map((track, i) =>
      trackRow(track, i, "search", [
        el("button", {
          type: "button",
          class: "ghost add",
          "aria-label": `Add ${track.name || track.id} to the playlist`,
          title: "Add to the open playlist",
          onclick: guard(() => addToPlaylist(track)),
          textContent: "+",
        }),
      ]),
    ),
  );
}

// -- playback ----------------------------------------------------------------------------

function contextTracks(context) {
  if (context === "playlist") return state.playlistItems.map((i) => i.track);
  if (context === "foryou") return state.forYou;
  if (context === "radio") return state.radio;
  return state.results;
}

async function playFrom(context, index) {
  const tracks = contextTracks(context);
  state.queue = tracks.map((track) => ({ track, context }));
  state.queueIndex = index;
  await playQueued();
}

async function playQueued(resumeAt = 0, { sameListen = false } = {}) {
  // sameListen: another rendition of the track playing now (a quality change), so the
  // listening session (and its play_id) carries on instead of starting a new one.
  const entry = state.queue[state.queueIndex];
  if (!entry) return;
  clearError();
  if (!sameListen) finishPlay("next");
  const { track, context } = entry;
  const t0 = performance.now();
  const answer = await api("GET", `/v1/tracks/${encodeURIComponent(track.id)}/stream`, {
    query: { quality: state.quality },
  });
  state.timing = { urlMs: performance.now() - t0, firstAudioMs: null, clickedAt: t0 };
  state.current = { track, context, answer };
  ensureAudioGraph();
  applyGain();
  const audio = $("audio");
  audio.src = answer.url;
  if (resumeAt > 0) audio.currentTime = resumeAt;
  if (sameListen && state.play && state.play.track.id === track.id) {
    state.play.bitrate = answer.bitrate_kbps;
    state.play.last = null;
  } else {
    state.play = {
      id: randomId(),
      track,
      context,
      version: answer.version,
      bitrate: answer.bitrate_kbps,
      ms: 0,
      last: null,
      reported: false,
    };
  }
  renderNowPlaying();
  renderResults();
  renderPlaylist();
  await audio.play().catch((err) => {
    if (err.name !== "AbortError") showError(new Error(`the browser refused to play: ${err.message}`));
  });
  loadFriends(track).catch(() => {});
  $("radio").disabled = false;
}

function renderNowPlaying() {
  const cur = state.current;
  if (!cur) return;
  const { track, answer } = cur;
  $("now-title").textContent = track.name || track.id;
  $("now-artist").textContent = artistsOf(track);
  $("now-art").style.setProperty("--hue", hueOf(track.id));
  $("now-bitrate").textContent = `${answer.bitrate_kbps} kbps`;
  $("now-bitrate").dataset.bitrate = answer.bitrate_kbps;
  const capped = $("now-capped");
  capped.dataset.capped = answer.capped ? "true" : "false";
  capped.textContent = answer.capped
    ? `capped: ${answer.requested_kbps} kbps asked, ${answer.tier} tier`
    : "not capped";
  capped.classList.toggle("warn", answer.capped);
  renderGain();
  renderTiming();
  document.title = `${track.name || track.id} · audiocdn player`;
}

function renderTiming() {
  const t = state.timing;
  const parts = [];
  if (t.urlMs !== null) parts.push(`URL ${Math.round(t.urlMs)} ms`);
  if (t.firstAudioMs !== null) parts.push(`first audio ${Math.round(t.firstAudioMs)} ms`);
  $("now-timing").textContent = parts.join(" · ");
}

function stopAudio() {
  const audio = $("audio");
  audio.pause();
  audio.removeAttribute("src");
  audio.load();
  state.current = null;
}

// Web Audio: element -> GainNode (ReplayGain) -> analyser (level meter) -> speakers.
// MediaElementSource only hears a cross-origin stream when the edge answers with
// Access-Control-Allow-Origin (hence crossorigin="anonymous" on the element);
// without it the browser feeds silence into the graph.
function ensureAudioGraph() {
  if (state.audio) {
    if (state.audio.ctx.state === "suspended") state.audio.ctx.resume();
    return;
  }
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  const ctx = new Ctx();
  const source = ctx.createMediaElementSource($("audio"));
  const gain = ctx.createGain();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(gain).connect(analyser).connect(ctx.destination);
  state.audio = { ctx, source, gain, analyser, buffer: new Float32Array(analyser.fftSize) };
  requestAnimationFrame(drawMeter);
}

function level() {
  const a = state.audio;
  if (!a) return 0;
  a.analyser.getFloatTimeDomainData(a.buffer);
  let sum = 0;
  for (const v of a.buffer) sum += v * v;
  return Math.sqrt(sum / a.buffer.length);
}

function drawMeter() {
  const rms = level();
  const width = Math.min(100, Math.max(0, (20 * Math.log10(rms + 1e-9) + 60) * (100 / 60)));
  $("meter-bar").style.width = `${width}%`;
  requestAnimationFrame(drawMeter);
}

function currentGain() {
  const loudness = state.current ? state.current.answer.loudness : null;
  return replayGain(loudness, state.replayGain);
}

function applyGain() {
  const g = currentGain();
  if (state.audio) state.audio.gain.gain.value = g.linear;
  renderGain();
}

function renderGain() {
  const loudness = state.current ? state.current.answer.loudness : null;
  const full = replayGain(loudness, true);
  const out = $("rg-value");
  if (!state.current) out.textContent = "";
  else if (!full.available) out.textContent = "no loudness data";
  else if (!state.replayGain) out.textContent = `off (${formatDb(full.db)} available)`;
  else out.textContent = `${formatDb(full.db)}${full.limited ? " (limited by peak)" : ""}`;
  out.dataset.gainDb = state.replayGain && full.available ? full.db.toFixed(2) : "0";
}

async function changeQuality() {
  state.quality = $("quality").value;
  sessionStorage.setItem("audiocdn.player.quality", state.quality);
  if (!state.current) return;
  // Another rendition of the same track: carry on from the same position.
  const audio = $("audio");
  await playQueued(audio.currentTime, { sameListen: true });
}

// Playback diagnostics: a media element hides the HTTP status of a refused request,
// so ask the URL directly (one byte) to show the edge's JSON error.
async function explainMediaError() {
  const audio = $("audio");
  if (!state.current || !audio.error) return;
  const url = state.current.answer.url;
  let message = `the browser could not play this stream (media error ${audio.error.code})`;
  try {
    const r = await fetch(url, { headers: { Range: "bytes=0-0" } });
    if (!r.ok) {
      const err = await errorFrom(r);
      const now = Date.now();
      if (err.code === "token_expired" && state.current && now - (state.renewedAt || 0) > 10000) {
        state.renewedAt = now; // once: a clock far off would otherwise loop here
        // The signed URL outlived its token: ask delivery for a fresh one and resume.
        say("The stream URL expired; getting a new one…");
        await playQueued(audio.currentTime || 0, { sameListen: true });
        return;
      }
      message = `the edge refused the stream: ${err.describe()}`;
    }
  } catch (err) {
    message = `cannot reach the edge (${new URL(url).host}): ${err.message}`;
  }
  showError(new Error(message));
}

// -- plays ---------------------------------------------------------------------------

function trackPlayTime() {
  const p = state.play;
  const audio = $("audio");
  if (!p || audio.seeking) return;
  const t = audio.currentTime;
  if (p.last !== null) {
    const delta = t - p.last;
    // Seeks are not listening ('seeking' resets p.last); the bound only guards against
    // a jump some browser reports without a seeking event.
    if (delta > 0 && delta < 4) p.ms += delta * 1000;
  }
  p.last = t;
}

function finishPlay(reason) {
  // One POST per listening session, once it is long enough to count (half the track,
  // at most 30 s, like the usual "a stream counts after 30 seconds" rule).
  const p = state.play;
  if (!p || p.reported) return;
  const durationMs = p.track.duration_ms || 0;
  const threshold = Math.min(30000, durationMs > 0 ? durationMs / 2 : 30000);
  if (p.ms < threshold) return;
  p.reported = true;
  const context =
    p.context === "playlist" && state.playlist
      ? { type: "playlist", uri: state.playlist.uri }
      : { type: { radio: "radio", foryou: "other" }[p.context] || "search" };
  api("POST", "/v1/me/plays", {
    body: {
      play_id: p.id,
      track_id: p.track.id,
      version: p.version,
      bitrate_kbps: p.bitrate,
      ms_played: Math.round(p.ms),
      context,
    },
    keepalive: reason === "pagehide",
  })
    .then(() => say(`Play of “${p.track.name || p.track.id}” recorded.`))
    .catch(showError);
}

async function loadFriends(track) {
  const out = $("now-friends");
  out.textContent = "";
  const page = await api("GET", `/v1/tracks/${encodeURIComponent(track.id)}/friends-listened`, {
    query: { limit: 3 },
  });
  if (!state.current || state.current.track.id !== track.id) return;
  if (!page.items.length) {
    out.textContent = "None of the people you follow has played this yet.";
    return;
  }
  const names = page.items.map((i) => `${i.user.id} (${timeAgo(i.last_played_at)})`);
  const more = page.total > page.items.length ? ` and ${page.total - page.items.length} more` : "";
  out.textContent = `Friends who listened: ${names.join(", ")}${more}`;
}

// -- playlists -----------------------------------------------------------------------

async function loadPlaylists(selectId) {
  const page = await api("GET", "/v1/me/playlists", { query: { limit: 50 } });
  state.playlists = page.items;
  const select = $("playlist-select");
  select.replaceChildren(
    el("option", { value: "", textContent: page.items.length ? "Choose a playlist…" : "No playlist yet" }),
    ...page.items.map((p) => el("option", { value: p.id, textContent: `${p.name} (${p.tracks.total})` })),
  );
  const wanted = selectId || (state.playlist && state.playlist.id) || "";
  select.value = page.items.some((p) => p.id === wanted) ? wanted : "";
  if (select.value) await openPlaylist(select.value);
  else {
    state.playlist = null;
    state.playlistItems = [];
    renderPlaylist();
  }
}

async function openPlaylist(id) {
  if (!id) {
    state.playlist = null;
    state.playlistItems = [];
    renderPlaylist();
    return;
  }
  const playlist = await api("GET", `/v1/playlists/${encodeURIComponent(id)}`);
  const items = [...playlist.tracks.items];
  let next = playlist.tracks.next;
  while (next) {
    const page = await api("GET", new URL(next).pathname + new URL(next).search);
    items.push(...page.items);
    next = page.next;
  }
  state.playlist = playlist;
  state.playlistItems = items;
  renderPlaylist();
}

async function createPlaylist(event) {
  event.preventDefault();
  clearError();
  const name = $("playlist-name").value.trim();
  if (!name) return;
  const created = await api("POST", "/v1/me/playlists", { body: { name, public: false } });
  $("playlist-name").value = "";
  say(`Playlist “${created.name}” created.`);
  await loadPlaylists(created.id);
}

async function addToPlaylist(track) {
  clearError();
  if (!state.playlist) throw new Error("create or choose a playlist first, then add tracks to it");
  await api("POST", `/v1/playlists/${state.playlist.id}/items`, { body: { uris: [track.uri] } });
  say(`Added “${track.name || track.id}” to ${state.playlist.name}.`);
  await loadPlaylists(state.playlist.id);
}

async function movePlaylistItem(from, to) {
  // Spotify's reorder: move the item at range_start to just before insert_before.
  if (!state.playlist || from === to || to < 0 || to >= state.playlistItems.length) return;
  const insertBefore = to > from ? to + 1 : to;
  clearError();
  try {
    await api("PUT", `/v1/playlists/${state.playlist.id}/items`, {
      body: {
        range_start: from,
        insert_before: insertBefore,
        range_length: 1,
        snapshot_id: state.playlist.snapshot_id,
      },
    });
  } catch (err) {
    if (err.status === 409 || err.status === 412) {
      // Someone else changed it meanwhile: show the current order instead.
      await openPlaylist(state.playlist.id);
    }
    throw err;
  }
  await openPlaylist(state.playlist.id);
  say(`Moved track ${from + 1} to position ${to + 1}.`);
}

async function removePlaylistItem(index) {
  const item = state.playlistItems[index];
  if (!state.playlist || !item) return;
  clearError();
  await api("DELETE", `/v1/playlists/${state.playlist.id}/items`, {
    body: { tracks: [{ uri: item.track.uri, positions: [index] }], snapshot_id: state.playlist.snapshot_id },
  });
  await loadPlaylists(state.playlist.id);
}

function renderPlaylist() {
  const list = $("playlist-items");
  const p = state.playlist;
  $("playlist-summary").textContent = p
    ? `${p.name}: ${state.playlistItems.length} track${state.playlistItems.length === 1 ? "" : "s"}`
    : "Open or create a playlist, then add tracks with +.";
  list.replaceChildren(
    ...state.playlistItems.map((item, i) => {
      const name = item.track.name || item.track.id;
      const row = trackRow(item.track, i, "playlist", [
        el(
          "span",
          { class: "reorder" },
          el("button", {
            type: "button",
            class: "ghost",
            "aria-label": `Move ${name} up`,
            disabled: i === 0,
            onclick: guard(() => movePlaylistItem(i, i - 1)),
            textContent: "↑",
          }),
          el("button", {
            type: "button",
            class: "ghost",
            "aria-label": `Move ${name} down`,
            disabled: i === state.playlistItems.length - 1,
            onclick: guard(() => movePlaylistItem(i, i + 1)),
            textContent: "↓",
          }),
          el("button", {
            type: "button",
            class: "ghost",
            "aria-label": `Remove ${name} from the playlist`,
            onclick: guard(() => removePlaylistItem(i)),
            textContent: "✕",
          }),
        ),
      ]);
      row.draggable = true;
      row.dataset.index = String(i);
      row.addEventListener("dragstart", (e) => {
        e.dataTransfer.setData("text/plain", String(i));
        e.dataTransfer.effectAllowed = "move";
        row.classList.add("dragging");
      });
      row.addEventListener("dragend", () => row.classList.remove("dragging"));
      row.addEventListener("dragover", (e) => {
        e.preventDefault();
        row.classList.add("drop-target");
      });
      row.addEventListener("dragleave", () => row.classList.remove("drop-target"));
      row.addEventListener(
        "drop",
        guard(async (e) => {
          e.preventDefault();
          row.classList.remove("drop-target");
          const from = Number(e.dataTransfer.getData("text/plain"));
          if (Number.isInteger(from)) await movePlaylistItem(from, i);
        }),
      );
      return row;
    }),
  );
}

// -- people ----------------------------------------------------------------------------

async function loadFollowing() {
  const answer = await api("GET", "/v1/me/following", { query: { type: "user", limit: 50 } });
  const list = $("following");
  const items = answer.users.items;
  list.replaceChildren(
    ...(items.length
      ? items.map((u) =>
          el(
            "li",
            {},
            el("span", { textContent: u.id }),
            el("button", {
              type: "button",
              class: "ghost",
              "aria-label": `Unfollow ${u.id}`,
              onclick: guard(() => setFollowing(u.id, false)),
              textContent: "Unfollow",
            }),
          ),
        )
      : [el("li", { class: "muted", textContent: "Nobody yet." })]),
  );
}

async function setFollowing(userId, follow) {
  clearError();
  await api(follow ? "PUT" : "DELETE", "/v1/me/following", { query: { type: "user", ids: userId } });
  say(follow ? `You follow ${userId} now.` : `You no longer follow ${userId}.`);
  await loadFollowing();
  if (state.current) await loadFriends(state.current.track);
}

async function follow(event) {
  event.preventDefault();
  const id = $("follow-id").value.trim();
  if (!id) return;
  await setFollowing(id, true);
  $("follow-id").value = "";
}

// -- start-up --------------------------------------------------------------------------

function wireAudio() {
  const audio = $("audio");
  audio.addEventListener("playing", () => {
    if (state.timing.firstAudioMs === null && state.timing.clickedAt !== undefined) {
      state.timing.firstAudioMs = performance.now() - state.timing.clickedAt;
      renderTiming();
    }
    if (state.audio && state.audio.ctx.state === "suspended") state.audio.ctx.resume();
  });
  audio.addEventListener("timeupdate", trackPlayTime);
  audio.addEventListener("seeking", () => {
    if (state.play) state.play.last = null;
  });
  audio.addEventListener("ended", () => {
    finishPlay("ended");
    if (state.queueIndex + 1 < state.queue.length) {
      state.queueIndex += 1;
      guard(playQueued)();
    }
  });
  audio.addEventListener("error", guard(explainMediaError));
  window.addEventListener("pagehide", () => finishPlay("pagehide"));
}

function wireControls() {
  $("signin-dev").addEventListener("submit", guard(signInDev));
  $("signin-token").addEventListener("submit", guard(signInToken));
  $("sign-out").addEventListener("click", signOut);
  $("error-close").addEventListener("click", clearError);
  $("search-form").addEventListener("submit", guard(search));
  $("playlist-create").addEventListener("submit", guard(createPlaylist));
  $("playlist-select").addEventListener("change", guard((e) => openPlaylist(e.target.value)));
  $("follow-form").addEventListener("submit", guard(follow));
  $("quality").addEventListener("change", guard(changeQuality));
  $("rg-toggle").checked = state.replayGain;
  $("rg-toggle").addEventListener("change", (e) => {
    state.replayGain = e.target.checked;
    sessionStorage.setItem("audiocdn.player.rg", state.replayGain ? "on" : "off");
    applyGain();
  });
  $("prev").addEventListener(
    "click",
    guard(async () => {
      const audio = $("audio");
      if (audio.currentTime > 3 || state.queueIndex <= 0) audio.currentTime = 0;
      else {
        state.queueIndex -= 1;
        await playQueued();
      }
    }),
  );
  $("next").addEventListener(
    "click",
    guard(async () => {
      if (state.queueIndex + 1 < state.queue.length) {
        state.queueIndex += 1;
        await playQueued();
      }
    }),
  );
}

async function main() {
  $("radio").addEventListener("click", guard(startRadio));
  wireAudio();
  wireControls();
  state.config = await api("GET", "/player/config.json", { auth: false });
  const quality = $("quality");
  quality.replaceChildren(
    ...state.config.qualities.map((q) =>
      el("option", {
        value: q,
        textContent: q === "auto" ? "auto (best allowed)" : `${q} (${state.config.quality_bitrates[q]} kbps)`,
      }),
    ),
  );
  quality.value = state.config.qualities.includes(state.quality) ? state.quality : "auto";
  state.quality = quality.value;
  if (state.config.dev_mode) {
    $("user-select").replaceChildren(
      ...state.config.demo_users.map((u) =>
        el("option", { value: u.user_id, textContent: `${u.user_id} (${u.tier}, up to ${Math.max(...u.entitled_bitrates)} kbps)` }),
      ),
    );
    const last = sessionStorage.getItem(USER_KEY);
    if (last) $("user-select").value = last;
  }
  showSignedOut();
  if (state.token) await enter();
  else say(state.config.dev_mode ? "Pick a demo user and sign in." : "Paste a user token to sign in.");
}

// A handle for tests and the console: read-only views of what the page is doing.
window.audiocdnPlayer = {
  state,
  level,
  replayGain,
  get gain() {
    return state.audio ? state.audio.gain.gain.value : 1;
  },
  get audioContextState() {
    return state.audio ? state.audio.ctx.state : "none";
  },
};

main().catch(showError);
