// audiocdn web player: plain ES modules, no build step, no external URL.
//
// It talks to delivery's v1 API with the user's bearer token, exactly like any
// client: search, the library, a signed stream URL per track, playlists, plays and
// friends-listened. The audio itself comes from the URL delivery signed (our edge by
// default, on another origin), played by a hidden <audio crossorigin> element that the
// now-playing bar drives, routed through Web Audio so ReplayGain can be applied.
//
//   lib.js       state, the API client, messages, DOM and format helpers
//   queue.js     the play queue (pure): order, shuffle, repeat
//   playback.js  the audio element, the now-playing bar, Media Session, plays, resume
//   abr.js       adaptive bitrate between the signed renditions
//   keys.js      keyboard shortcuts and their help
//   views.js     the main panel: home, search, recently played, the library
//   playlists.js the playlists panel and playlist management

import { abr, wireAbr } from "./abr.js";
import { wireKeys } from "./keys.js";
import {
  $,
  api,
  clearError,
  el,
  guard,
  hooks,
  normTrack,
  randomId,
  say,
  setToken,
  showError,
  state,
  USER_KEY,
} from "./lib.js";
import {
  applyGain,
  ensureAudioGraph,
  explainMediaError,
  finishPlay,
  level,
  loadFriends,
  markPlayingRows,
  next,
  playQueued,
  renderBitrate,
  renderTiming,
  renderTransport,
  replayGain,
  restoreSession,
  saveSession,
  stopAudio,
  trackPlayTime,
  wireMediaSession,
  wireTransport,
} from "./playback.js";
import { draggable, loadPlaylists, renderPlaylist, wirePlaylists } from "./playlists.js";
import { Queue } from "./queue.js";
import { render, trackRow, wireViews } from "./views.js";

// -- signing in ----------------------------------------------------------------------

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
  saveSession(true);
  stopAudio();
  setToken(null, null);
  state.me = null;
  state.playlist = null;
  state.playlistItems = [];
  state.queue = new Queue();
  renderQueue();
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
  say(`Signed in as ${state.me.user_id} (${state.me.tier}). Search or browse for a track to play.`);
  await Promise.all([render(), loadPlaylists(), loadFollowing()]);
  const resumed = await restoreSession(Queue).catch((err) => {
    showError(err);
    return false;
  });
  if (!resumed) renderQueue();
}

// -- radio ---------------------------------------------------------------------------

async function startRadio() {
  // The radio's first track is the seed, the one playing: queue the rest after it.
  const seed = state.current.track;
  const answer = await api("GET", `/v1/tracks/${encodeURIComponent(seed.id)}/radio`, { query: { limit: 25 } });
  const tracks = answer.tracks.map(normTrack).filter((t) => t.id !== seed.id);
  for (const t of tracks.reverse()) state.queue.playNext(t, "radio");
  renderQueue();
  renderTransport();
  saveSession(true);
  say(tracks.length ? `Radio: ${tracks.length} tracks like “${seed.title}” queued.` : "No similar tracks yet.");
}

// -- the queue panel -------------------------------------------------------------------

function renderQueue() {
  const q = state.queue;
  const list = $("queue");
  $("queue-summary").textContent = q.items.length
    ? `${q.items.length} track${q.items.length === 1 ? "" : "s"}${q.shuffle ? " · shuffled" : ""}${q.repeat !== "off" ? ` · repeat ${q.repeat}` : ""}`
    : "The queue is empty: play something, or add tracks with ≡+.";
  const tracks = q.items.map((e) => e.track);
  list.replaceChildren(
    ...q.items.map((e, i) => {
      const name = e.track.title;
      const row = trackRow(e.track, i, e.context, tracks, {
        extra: [
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Move ${name} up in the queue`,
            disabled: i === 0,
            onclick: () => moveInQueue(i, i - 1),
            textContent: "↑",
          }),
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Move ${name} down in the queue`,
            disabled: i === q.items.length - 1,
            onclick: () => moveInQueue(i, i + 1),
            textContent: "↓",
          }),
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Remove ${name} from the queue`,
            onclick: guard(() => removeFromQueue(i)),
            textContent: "✕",
          }),
        ],
      });
      row.classList.toggle("current", i === q.index);
      row.classList.remove("playing");
      if (i === q.index) row.setAttribute("aria-current", "true");
      // "Play" in the queue jumps to that entry instead of replacing the queue.
      const play = row.querySelector("button.play");
      play.replaceWith(
        el("button", {
          type: "button",
          class: "play",
          "aria-label": `Play ${name}`,
          onclick: guard(async () => {
            q.index = i;
            await playQueued();
          }),
          textContent: i === q.index ? "♪" : String(i + 1),
        }),
      );
      for (const b of row.querySelectorAll("button.queue-next, button.queue-add, button.add")) b.remove();
      draggable(row, i, async (from, to) => moveInQueue(from, to));
      return row;
    }),
  );
  renderTransport();
}

function moveInQueue(from, to) {
  if (state.queue.move(from, to)) {
    renderQueue();
    saveSession(true);
  }
}

async function removeFromQueue(i) {
  const wasCurrent = state.queue.remove(i);
  renderQueue();
  saveSession(true);
  if (!wasCurrent) return;
  if (state.queue.current) await playQueued();
  else stopAudio();
}

// -- people ----------------------------------------------------------------------------

async function loadFollowing() {
  const answer = await api("GET", "/v1/me/following", { query: { type: "user", limit: 50 } });
  const items = answer.users.items;
  $("following").replaceChildren(
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

async function changeQuality() {
  state.quality = $("quality").value;
  sessionStorage.setItem("audiocdn.player.quality", state.quality);
  if (!state.current) return;
  // Another rendition of the same track: carry on from the same position.
  const a = $("audio");
  const wasPlaying = !a.paused;
  await playQueued(a.currentTime, { sameListen: true, autoplay: wasPlaying });
}

function wireAudio() {
  const a = $("audio");
  a.addEventListener("playing", () => {
    if (state.timing.firstAudioMs === null && state.timing.clickedAt !== undefined) {
      state.timing.firstAudioMs = performance.now() - state.timing.clickedAt;
      renderTiming();
    }
    if (state.audio && state.audio.ctx.state === "suspended") state.audio.ctx.resume();
  });
  a.addEventListener("timeupdate", () => {
    trackPlayTime();
    saveSession(false);
  });
  a.addEventListener("pause", () => saveSession(true));
  a.addEventListener("seeking", () => {
    if (state.play) state.play.last = null;
    // A loop (repeat one) seeks back to 0 from the end: that listen is over, and the
    // track playing again is a new one.
    if (a.loop && a.currentTime < 0.5 && state.play && state.play.ms > 0) {
      finishPlay("loop");
      state.play = { ...state.play, id: randomId(), ms: 0, last: null, reported: false };
    }
  });
  a.addEventListener("ended", () => {
    finishPlay("ended");
    guard(async () => {
      if (!(await next(true))) {
        renderQueue();
        saveSession(true);
      }
    })();
  });
  a.addEventListener("error", guard(explainMediaError));
  window.addEventListener("pagehide", () => {
    saveSession(true);
    finishPlay("pagehide");
  });
}

function wireControls() {
  $("signin-dev").addEventListener("submit", guard(signInDev));
  $("signin-token").addEventListener("submit", guard(signInToken));
  $("sign-out").addEventListener("click", signOut);
  $("error-close").addEventListener("click", clearError);
  $("follow-form").addEventListener("submit", guard(follow));
  $("quality").addEventListener("change", guard(changeQuality));
  $("radio").addEventListener("click", guard(startRadio));
  $("queue-clear").addEventListener("click", () => {
    const playing = state.queue.current;
    state.queue.clear();
    if (playing) {
      state.queue.add(playing.track, playing.context);
    }
    renderQueue();
    saveSession(true);
  });
  $("rg-toggle").checked = state.replayGain;
  $("rg-toggle").addEventListener("change", (e) => {
    state.replayGain = e.target.checked;
    sessionStorage.setItem("audiocdn.player.rg", state.replayGain ? "on" : "off");
    applyGain();
  });
}

async function main() {
  hooks.renderQueue = renderQueue;
  hooks.saveSession = saveSession;
  hooks.renderBitrate = renderBitrate;
  hooks.trackRow = trackRow;
  wireAudio();
  wireTransport();
  wireMediaSession();
  wireAbr();
  wireKeys();
  wireControls();
  wirePlaylists();
  state.config = await api("GET", "/player/config.json", { auth: false });
  wireViews();
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
        el("option", {
          value: u.user_id,
          textContent: `${u.user_id} (${u.tier}, up to ${Math.max(...u.entitled_bitrates)} kbps)`,
        }),
      ),
    );
    const last = sessionStorage.getItem(USER_KEY);
    if (last) $("user-select").value = last;
  }
  showSignedOut();
  renderPlaylist();
  if (state.token) await enter();
  else say(state.config.dev_mode ? "Pick a demo user and sign in." : "Paste a user token to sign in.");
}

// A handle for tests and the console: views of what the page is doing.
window.audiocdnPlayer = {
  state,
  abr,
  level,
  replayGain,
  ensureAudioGraph,
  markPlayingRows,
  get queue() {
    return state.queue.items.map((e) => e.track.id);
  },
  get gain() {
    return state.audio ? state.audio.gain.gain.value : 1;
  },
  get audioContextState() {
    return state.audio ? state.audio.ctx.state : "none";
  },
};

main().catch(showError);
