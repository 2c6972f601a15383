// Playback: the (hidden) <audio> element, the now-playing bar that drives it, ReplayGain,
// the Media Session, play reporting and resuming after a reload.

import { abrLoaded, abrRendition } from "./abr.js";
import {
  $,
  api,
  clearError,
  cover,
  errorFrom,
  formatClock,
  formatDb,
  hooks,
  randomId,
  say,
  showError,
  state,
  timeAgo,
} from "./lib.js";

const SESSION_SAVE_MS = 2000;
const audio = () => $("audio");

// -- ReplayGain ----------------------------------------------------------------------

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

// Web Audio: element -> GainNode (ReplayGain) -> analyser (level meter) -> speakers.
// MediaElementSource only hears a cross-origin stream when the edge answers with
// Access-Control-Allow-Origin (hence crossorigin="anonymous" on the element);
// without it the browser feeds silence into the graph.
export function ensureAudioGraph() {
  if (state.audio) {
    if (state.audio.ctx.state === "suspended") state.audio.ctx.resume();
    return;
  }
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  const ctx = new Ctx();
  const source = ctx.createMediaElementSource(audio());
  const gain = ctx.createGain();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(gain).connect(analyser).connect(ctx.destination);
  state.audio = { ctx, source, gain, analyser, buffer: new Float32Array(analyser.fftSize) };
  requestAnimationFrame(drawMeter);
}

export function level() {
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

export function applyGain() {
  const loudness = state.current ? state.current.answer.loudness : null;
  const g = replayGain(loudness, state.replayGain);
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

// -- starting a track ----------------------------------------------------------------

async function streamAnswer(track) {
  return api("GET", `/v1/tracks/${encodeURIComponent(track.id)}/stream`, {
    query: { quality: state.quality },
  });
}

/** Play the queue's current entry. `resumeAt`: start there; `sameListen`: another
 *  rendition of the track playing now (a quality change), so the listening session
 *  carries on; `autoplay: false` loads it paused (a restored session). */
export async function playQueued(resumeAt = 0, { sameListen = false, autoplay = true } = {}) {
  const entry = state.queue.current;
  if (!entry) return;
  clearError();
  if (!sameListen) finishPlay("next");
  const { track, context } = entry;
  const t0 = performance.now();
  const answer = await streamAnswer(track);
  if (state.queue.current !== entry) return; // another track was chosen meanwhile
  state.timing = { urlMs: performance.now() - t0, firstAudioMs: null, clickedAt: t0 };
  state.current = { track, context, answer, bitrate: answer.bitrate_kbps, entry };
  abrLoaded(answer);
  if (autoplay) ensureAudioGraph();
  applyGain();
  const a = audio();
  a.loop = state.queue.repeat === "one";
  a.src = answer.url;
  if (resumeAt > 0) a.currentTime = resumeAt; // the default playback start position
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
  hooks.renderQueue();
  markPlayingRows();
  hooks.saveSession(true);
  if (autoplay) {
    await a.play().catch((err) => {
      if (err.name !== "AbortError") showError(new Error(`the browser refused to play: ${err.message}`));
    });
  } else {
    renderTransport();
  }
  loadFriends(track).catch(() => {});
  fillArt(track);
  $("radio").disabled = false;
}

// Search, playlists and plays answer tracks without art; the library has it, by album.
const ART_KEEP_MS = 5 * 60 * 1000; // well within the signed URLs' lifetime
const albumArt = new Map(); // album id -> {at, art: Promise<{url, thumbnail_url} | null>}

function fillArt(track) {
  if (track.art || !track.album_id || !(state.config && state.config.library)) return;
  let entry = albumArt.get(track.album_id);
  if (!entry || Date.now() - entry.at > ART_KEEP_MS) {
    const art = api("GET", `/v1/library/albums/${encodeURIComponent(track.album_id)}`)
      .then((album) => {
        const own = (album.tracks || []).find((t) => t.id === track.id);
        return (own && own.art) || album.art || null;
      })
      .catch(() => null);
    entry = { at: Date.now(), art };
    albumArt.set(track.album_id, entry);
  }
  entry.art.then((art) => {
    if (!art || track.art) return;
    track.art = { url: art.url, thumbnail_url: art.thumbnail_url };
    if (state.current && state.current.track === track) renderNowPlaying();
    hooks.saveSession(true);
  });
}

/** Play `tracks` (normalised) from `index`: the queue becomes that list. */
export async function playList(tracks, context, index) {
  state.queue.replace(tracks, context, index);
  await playQueued();
}

export function markPlayingRows() {
  const id = state.current ? state.current.track.id : null;
  for (const row of document.querySelectorAll("li.track[data-track-id]")) {
    const playing = row.dataset.trackId === id && !row.closest("#queue");
    row.classList.toggle("playing", playing);
    const btn = row.querySelector("button.play");
    if (btn) btn.textContent = playing ? "♪" : "▶";
  }
}

export function stopAudio() {
  const a = audio();
  a.pause();
  a.removeAttribute("src");
  a.load();
  state.current = null;
  renderTransport();
}

// -- transport ------------------------------------------------------------------------

export async function togglePlay() {
  const a = audio();
  if (!state.current) {
    if (state.queue.current) await playQueued();
    return;
  }
  if (a.paused) {
    ensureAudioGraph();
    await a.play().catch((err) => {
      if (err.name !== "AbortError") showError(new Error(`the browser refused to play: ${err.message}`));
    });
  } else {
    a.pause();
  }
}

export async function next(auto = false) {
  const i = state.queue.nextIndex(auto);
  if (i < 0) {
    if (!auto) say("End of the queue.");
    return false;
  }
  state.queue.index = i;
  await playQueued();
  return true;
}

export async function previous() {
  const a = audio();
  const i = state.queue.previousIndex();
  if (a.currentTime > 3 || i < 0) {
    a.currentTime = 0;
    return;
  }
  state.queue.index = i;
  await playQueued();
}

export function seekTo(seconds) {
  const a = audio();
  if (!state.current) return;
  const end = isFinite(a.duration) ? a.duration : state.current.answer.duration_s;
  a.currentTime = Math.max(0, Math.min(seconds, Math.max(0, end - 0.25)));
  renderTransport();
}

export function seekBy(delta) {
  seekTo(audio().currentTime + delta);
}

export function toggleMute() {
  const a = audio();
  a.muted = !a.muted;
  renderVolume();
}

function renderVolume() {
  const a = audio();
  const mute = $("mute");
  mute.setAttribute("aria-pressed", a.muted ? "true" : "false");
  mute.setAttribute("aria-label", a.muted ? "Unmute" : "Mute");
  mute.querySelector(".i-sound").toggleAttribute("hidden", a.muted);
  mute.querySelector(".i-muted").toggleAttribute("hidden", !a.muted);
  $("volume").value = String(a.muted ? 0 : a.volume);
}

let seekDragging = false;

/** The bar's play button, slider and clock, from the element's state. */
export function renderTransport() {
  const a = audio();
  const playing = state.current && !a.paused && !a.ended;
  const btn = $("play-pause");
  btn.dataset.state = playing ? "playing" : "paused";
  btn.setAttribute("aria-label", playing ? "Pause" : "Play");
  // SVG elements have no `hidden` property: toggle the attribute (the CSS hides it).
  btn.querySelector(".i-play").toggleAttribute("hidden", Boolean(playing));
  btn.querySelector(".i-pause").toggleAttribute("hidden", !playing);
  btn.disabled = !state.current && !state.queue.current;
  const duration = state.current
    ? isFinite(a.duration) && a.duration > 0
      ? a.duration
      : state.current.answer.duration_s
    : 0;
  const seek = $("seek");
  seek.max = String(duration || 0);
  seek.disabled = !state.current;
  if (!seekDragging) seek.value = String(state.current ? a.currentTime : 0);
  seek.style.setProperty("--pct", duration ? `${(Number(seek.value) / duration) * 100}%` : "0%");
  $("time-cur").textContent = formatClock(seekDragging ? Number(seek.value) : state.current ? a.currentTime : 0);
  $("time-dur").textContent = formatClock(duration);
  $("next").disabled = state.queue.nextIndex(false) < 0;
  $("prev").disabled = !state.current;
  const shuffle = $("shuffle");
  shuffle.setAttribute("aria-pressed", state.queue.shuffle ? "true" : "false");
  const repeat = $("repeat");
  repeat.dataset.mode = state.queue.repeat;
  repeat.setAttribute("aria-label", `Repeat: ${state.queue.repeat}`);
  repeat.title = `Repeat: ${state.queue.repeat} (click to change)`;
  repeat.setAttribute("aria-pressed", state.queue.repeat === "off" ? "false" : "true");
  if ("mediaSession" in navigator) {
    navigator.mediaSession.playbackState = !state.current ? "none" : playing ? "playing" : "paused";
  }
}

export function setRepeatMode(mode) {
  state.queue.repeat = mode;
  audio().loop = mode === "one";
  renderTransport();
  hooks.saveSession(true);
}

export function wireTransport() {
  const a = audio();
  $("play-pause").addEventListener("click", () => togglePlay().catch(showError));
  $("next").addEventListener("click", () => next(false).catch(showError));
  $("prev").addEventListener("click", () => previous().catch(showError));
  $("shuffle").addEventListener("click", () => {
    state.queue.setShuffle(!state.queue.shuffle);
    say(state.queue.shuffle ? "Shuffle on: the upcoming tracks are shuffled." : "Shuffle off.");
    hooks.renderQueue();
    renderTransport();
    hooks.saveSession(true);
  });
  $("repeat").addEventListener("click", () => setRepeatMode(state.queue.cycleRepeat()));
  const seek = $("seek");
  seek.addEventListener("input", () => {
    seekDragging = true;
    renderTransport();
  });
  seek.addEventListener("change", () => {
    seekDragging = false;
    seekTo(Number(seek.value));
  });
  $("mute").addEventListener("click", toggleMute);
  $("volume").addEventListener("input", (e) => {
    a.volume = Number(e.target.value);
    a.muted = a.volume === 0;
    renderVolume();
  });
  for (const name of ["play", "pause", "loadedmetadata", "durationchange", "emptied", "ended"]) {
    a.addEventListener(name, renderTransport);
  }
  let lastPosition = 0;
  a.addEventListener("timeupdate", () => {
    renderTransport();
    const now = performance.now();
    if (now - lastPosition > 1000) {
      lastPosition = now;
      updatePositionState();
    }
  });
  renderVolume();
  renderTransport();
}

// -- now playing -------------------------------------------------------------------

/** The nominal rung, the real average bitrate of that rendition, and whether the
 *  source (not the subscription) limits the quality: a lossy master below the rung, or
 *  a rung the listener may play that this track lacks (renditions are never upscaled). */
export function bitrateFacts(answer, bitrate) {
  const renditions = answer.renditions || [];
  const r = renditions.find((x) => x.bitrate_kbps === bitrate) || {};
  const avg = typeof r.avg_bitrate_kbps === "number" && r.avg_bitrate_kbps > 0 ? r.avg_bitrate_kbps : null;
  const source = answer.source || {};
  const lossy = !source.lossless && typeof source.bitrate_kbps === "number" && source.bitrate_kbps > 0;
  const sourceName = lossy ? `${Math.round(source.bitrate_kbps)} kbps ${source.codec || ""}`.trim() : "";
  const notes = [];
  if (lossy && source.bitrate_kbps < bitrate) notes.push(`the source is ${sourceName}: it limits the quality`);
  const entitledTop = Math.max(...(state.me ? state.me.entitled_bitrates : [bitrate]));
  const trackTop = Math.max(bitrate, ...renditions.map((x) => x.bitrate_kbps));
  if (trackTop < entitledTop && !answer.capped) {
    notes.push(`no ${entitledTop} kbps rendition${lossy ? ` of a ${sourceName} source` : ""} (never upscaled)`);
  }
  return { nominal: bitrate, avg, sourceNote: notes.join("; ") };
}

export function renderBitrate() {
  const cur = state.current;
  if (!cur) return;
  const facts = bitrateFacts(cur.answer, cur.bitrate);
  const badge = $("now-bitrate");
  badge.textContent = `${facts.nominal} kbps`;
  badge.dataset.bitrate = String(facts.nominal);
  const avg = $("now-avg");
  avg.hidden = facts.avg === null;
  avg.textContent = facts.avg === null ? "" : `≈${Math.round(facts.avg)} kbps real`;
  avg.dataset.avg = facts.avg === null ? "" : String(facts.avg);
  avg.title = "Average bitrate of this rendition (its size over its duration)";
  const src = $("now-source");
  src.hidden = !facts.sourceNote;
  src.textContent = facts.sourceNote;
  const abrBadge = $("now-abr");
  const stepped = cur.bitrate !== cur.answer.bitrate_kbps;
  abrBadge.hidden = !stepped;
  abrBadge.textContent = stepped ? `adaptive: ${cur.bitrate} of ${cur.answer.bitrate_kbps} kbps` : "";
}

export function renderNowPlaying() {
  const cur = state.current;
  if (!cur) return;
  const { track, answer } = cur;
  $("now-title").textContent = track.title;
  $("now-artist").textContent = [track.artist, track.album].filter(Boolean).join(" · ");
  $("now-art").replaceChildren(cover(track.art, { label: track.album || track.title }));
  renderBitrate();
  const capped = $("now-capped");
  capped.dataset.capped = answer.capped ? "true" : "false";
  capped.textContent = answer.capped ? `capped: ${answer.requested_kbps} kbps asked, ${answer.tier} tier` : "not capped";
  capped.classList.toggle("warn", answer.capped);
  renderGain();
  renderTiming();
  renderTransport();
  updateMediaMetadata();
  document.title = `${track.title} · audiocdn player`;
}

export function renderTiming() {
  const t = state.timing;
  const parts = [];
  if (t.urlMs !== null) parts.push(`URL ${Math.round(t.urlMs)} ms`);
  if (t.firstAudioMs !== null) parts.push(`first audio ${Math.round(t.firstAudioMs)} ms`);
  $("now-timing").textContent = parts.join(" · ");
}

// -- Media Session (lock screen, hardware keys) ---------------------------------------

function updateMediaMetadata() {
  if (!("mediaSession" in navigator) || !state.current) return;
  const t = state.current.track;
  const artwork = t.art && t.art.thumbnail_url ? [{ src: t.art.thumbnail_url, sizes: "300x300", type: "image/jpeg" }] : [];
  navigator.mediaSession.metadata = new MediaMetadata({
    title: t.title,
    artist: t.artist || "",
    album: t.album || "",
    artwork,
  });
}

function updatePositionState() {
  const a = audio();
  if (!("mediaSession" in navigator) || !state.current || !isFinite(a.duration) || a.duration <= 0) return;
  try {
    navigator.mediaSession.setPositionState({
      duration: a.duration,
      playbackRate: a.playbackRate || 1,
      position: Math.min(a.currentTime, a.duration),
    });
  } catch (_) {
    /* a position the browser refuses (rounding at the end) is not worth an error */
  }
}

export function wireMediaSession() {
  if (!("mediaSession" in navigator)) return;
  const handlers = {
    play: () => togglePlayTo(true),
    pause: () => togglePlayTo(false),
    previoustrack: () => previous(),
    nexttrack: () => next(false),
    seekto: (d) => seekTo(d.seekTime),
    seekbackward: (d) => seekBy(-(d.seekOffset || 10)),
    seekforward: (d) => seekBy(d.seekOffset || 10),
  };
  for (const [action, fn] of Object.entries(handlers)) {
    try {
      navigator.mediaSession.setActionHandler(action, (details) => {
        Promise.resolve(fn(details || {})).catch(showError);
      });
    } catch (_) {
      /* an action this browser does not know */
    }
  }
}

async function togglePlayTo(play) {
  const a = audio();
  if (play === a.paused) await togglePlay();
}

// -- plays -------------------------------------------------------------------------------

export function trackPlayTime() {
  const p = state.play;
  const a = audio();
  if (!p || a.seeking) return;
  const t = a.currentTime;
  if (p.last !== null) {
    const delta = t - p.last;
    // Seeks are not listening ('seeking' resets p.last); the bound only guards against
    // a jump some browser reports without a seeking event.
    if (delta > 0 && delta < 4) p.ms += delta * 1000;
  }
  p.last = t;
}

export function finishPlay(reason) {
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
      : p.context === "album" || p.context === "artist"
        ? { type: p.context }
        : { type: { radio: "radio", foryou: "other", recent: "other" }[p.context] || "search" };
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
    .then(() => say(`Play of “${p.track.title}” recorded.`))
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

export { loadFriends };

// -- resume after reload -----------------------------------------------------------------

function sessionKey() {
  return state.me ? `audiocdn.player.session.${state.me.user_id}` : null;
}

let lastSave = 0;

/** Save the queue, the track and its position (throttled; `now` forces it). */
export function saveSession(now = false) {
  const key = sessionKey();
  if (!key) return;
  const t = performance.now();
  if (!now && t - lastSave < SESSION_SAVE_MS) return;
  lastSave = t;
  const a = audio();
  const data = {
    v: 1,
    queue: state.queue.toJSON(),
    position: state.current ? a.currentTime : 0,
    playing: Boolean(state.current && !a.paused),
    saved_at: Date.now(),
  };
  try {
    localStorage.setItem(key, JSON.stringify(data));
  } catch (_) {
    /* storage full or disabled: resuming is a convenience */
  }
}

/** Put the saved queue back and load its track at the saved position: paused, or
 *  playing when it was and the browser allows it. */
export async function restoreSession(Queue) {
  const key = sessionKey();
  if (!key) return false;
  let data = null;
  try {
    data = JSON.parse(localStorage.getItem(key) || "null");
  } catch (_) {
    data = null;
  }
  if (!data || data.v !== 1) return false;
  const queue = Queue.fromJSON(data.queue);
  if (!queue.current) return false;
  state.queue = queue;
  const position = typeof data.position === "number" && data.position > 0 ? data.position : 0;
  await playQueued(position, { autoplay: false });
  const a = audio();
  if (data.playing) {
    ensureAudioGraph();
    a.play().catch(() => {}); // without a user gesture the browser may refuse: stay paused
  }
  say(`Resumed “${queue.current.track.title}” at ${formatClock(position)}.`);
  return true;
}

// -- errors ---------------------------------------------------------------------------

// Playback diagnostics: a media element hides the HTTP status of a refused request,
// so ask the URL directly (one byte) to show the edge's JSON error.
export async function explainMediaError() {
  const a = audio();
  if (!state.current || !a.error) return;
  const url = abrRendition().url;
  let message = `the browser could not play this stream (media error ${a.error.code})`;
  try {
    const r = await fetch(url, { headers: { Range: "bytes=0-0" } });
    if (!r.ok) {
      const err = await errorFrom(r);
      const now = Date.now();
      if (err.code === "token_expired" && state.current && now - (state.renewedAt || 0) > 10000) {
        state.renewedAt = now; // once: a clock far off would otherwise loop here
        // The signed URL outlived its token: ask delivery for a fresh one and resume.
        say("The stream URL expired; getting a new one…");
        await playQueued(a.currentTime || 0, { sameListen: true });
        return;
      }
      message = `the edge refused the stream: ${err.describe()}`;
    }
  } catch (err) {
    message = `cannot reach the edge (${new URL(url).host}): ${err.message}`;
  }
  showError(new Error(message));
}
