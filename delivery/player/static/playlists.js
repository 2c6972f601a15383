// The playlists panel: open, create, add, reorder and remove tracks; and, for the owner,
// rename, delete, public/private, collaborative and collaborators (the v1 playlist API).

import { $, api, clearError, el, guard, normTrack, plural, relative, say, state } from "./lib.js";
import { playList } from "./playback.js";
import { trackRow } from "./views.js";

export async function loadPlaylists(selectId) {
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

export async function openPlaylist(id) {
  if (!id) {
    state.playlist = null;
    state.playlistItems = [];
    state.collaborators = [];
    renderPlaylist();
    return;
  }
  const playlist = await api("GET", `/v1/playlists/${encodeURIComponent(id)}`);
  const items = [...playlist.tracks.items];
  let next = playlist.tracks.next;
  while (next) {
    const page = await api("GET", relative(next));
    items.push(...page.items);
    next = page.next;
  }
  state.playlist = playlist;
  state.playlistItems = items.map((i) => ({ ...i, track: normTrack(i.track) }));
  state.collaborators = isOwner()
    ? (await api("GET", `/v1/playlists/${encodeURIComponent(id)}/collaborators`)).items
    : [];
  renderPlaylist();
}

function isOwner() {
  return Boolean(state.playlist && state.me && state.playlist.owner.id === state.me.user_id);
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

export async function addToPlaylist(track) {
  clearError();
  if (!state.playlist) throw new Error("create or choose a playlist first, then add tracks to it");
  await api("POST", `/v1/playlists/${state.playlist.id}/items`, { body: { uris: [track.uri] } });
  say(`Added “${track.title}” to ${state.playlist.name}.`);
  await loadPlaylists(state.playlist.id);
}

async function movePlaylistItem(from, to) {
  // Spotify's reorder: move the item at range_start to just before insert_before.
  if (!state.playlist || from === to || to < 0 || to >= state.playlistItems.length) return;
  const insertBefore = to > from ? to + 1 : to;
  clearError();
  try {
    await api("PUT", `/v1/playlists/${state.playlist.id}/items`, {
      body: { range_start: from, insert_before: insertBefore, range_length: 1, snapshot_id: state.playlist.snapshot_id },
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

// -- managing the playlist (owner) ------------------------------------------------------

async function changeDetails(details, message) {
  clearError();
  const id = state.playlist.id;
  try {
    await api("PUT", `/v1/playlists/${encodeURIComponent(id)}`, { body: details });
  } finally {
    await loadPlaylists(id); // show what the server holds, also after a refusal
  }
  say(message);
}

async function rename(event) {
  event.preventDefault();
  const name = $("playlist-rename-name").value.trim();
  if (!name || !state.playlist || name === state.playlist.name) return;
  await changeDetails({ name }, `Playlist renamed to “${name}”.`);
}

async function deletePlaylist() {
  const p = state.playlist;
  if (!p) return;
  if (!window.confirm(`Delete the playlist “${p.name}”? It leaves your library.`)) return;
  clearError();
  // Spotify's model: the owner unfollowing deletes it from their library.
  await api("DELETE", `/v1/playlists/${encodeURIComponent(p.id)}/followers`);
  state.playlist = null;
  say(`Playlist “${p.name}” deleted.`);
  await loadPlaylists();
}

async function setVisibility() {
  const visibility = $("playlist-visibility").value;
  const details = {
    private: { public: false, collaborative: false },
    public: { public: true, collaborative: false },
    collaborative: { public: false, collaborative: true },
  }[visibility];
  await changeDetails(details, `Playlist is ${visibility} now.`);
}

async function addCollaborator(event) {
  event.preventDefault();
  const id = $("collab-id").value.trim();
  if (!id || !state.playlist) return;
  clearError();
  await api("PUT", `/v1/playlists/${encodeURIComponent(state.playlist.id)}/collaborators`, { query: { ids: id } });
  $("collab-id").value = "";
  say(`${id} can now edit “${state.playlist.name}”.`);
  await openPlaylist(state.playlist.id);
}

async function removeCollaborator(userId) {
  clearError();
  await api("DELETE", `/v1/playlists/${encodeURIComponent(state.playlist.id)}/collaborators`, {
    query: { ids: userId },
  });
  say(`${userId} removed from the collaborators.`);
  await openPlaylist(state.playlist.id);
}

function renderManage() {
  const p = state.playlist;
  const owner = isOwner();
  $("playlist-manage").hidden = !p;
  if (!p) return;
  $("playlist-owner").textContent = owner ? "" : `by ${p.owner.id}`;
  for (const id of ["playlist-rename", "playlist-visibility-row", "collab-section"]) $(id).hidden = !owner;
  $("playlist-rename-name").value = p.name;
  $("playlist-visibility").value = p.collaborative ? "collaborative" : p.public ? "public" : "private";
  $("playlist-delete").textContent = owner ? "Delete" : "Remove from library";
  $("collab-section").hidden = !owner || !p.collaborative;
  $("collaborators").replaceChildren(
    ...(state.collaborators.length
      ? state.collaborators.map((u) =>
          el(
            "li",
            { dataset: { userId: u.id } },
            el("span", { textContent: u.id }),
            el("button", {
              type: "button",
              class: "ghost",
              "aria-label": `Remove collaborator ${u.id}`,
              onclick: guard(() => removeCollaborator(u.id)),
              textContent: "Remove",
            }),
          ),
        )
      : [el("li", { class: "muted", textContent: "No collaborators yet." })]),
  );
}

export function renderPlaylist() {
  const list = $("playlist-items");
  const p = state.playlist;
  const tracks = state.playlistItems.map((i) => i.track);
  $("playlist-summary").textContent = p
    ? `${p.name}: ${plural(state.playlistItems.length, "track")}${p.public ? " · public" : ""}${p.collaborative ? " · collaborative" : ""}`
    : "Open or create a playlist, then add tracks with +.";
  renderManage();
  list.replaceChildren(
    ...state.playlistItems.map((item, i) => {
      const name = item.track.title;
      const row = trackRow(item.track, i, "playlist", tracks, {
        extra: [
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Move ${name} up`,
            disabled: i === 0,
            onclick: guard(() => movePlaylistItem(i, i - 1)),
            textContent: "↑",
          }),
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Move ${name} down`,
            disabled: i === state.playlistItems.length - 1,
            onclick: guard(() => movePlaylistItem(i, i + 1)),
            textContent: "↓",
          }),
          el("button", {
            type: "button",
            class: "ghost small-btn",
            "aria-label": `Remove ${name} from the playlist`,
            onclick: guard(() => removePlaylistItem(i)),
            textContent: "✕",
          }),
        ],
      });
      draggable(row, i, (from, to) => movePlaylistItem(from, to));
      return row;
    }),
  );
}

/** Drag-and-drop reordering of a list row (the buttons do the same without a mouse). */
export function draggable(row, i, move) {
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
      if (Number.isInteger(from)) await move(from, i);
    }),
  );
}

export function wirePlaylists() {
  $("playlist-create").addEventListener("submit", guard(createPlaylist));
  $("playlist-select").addEventListener("change", guard((e) => openPlaylist(e.target.value)));
  $("playlist-rename").addEventListener("submit", guard(rename));
  $("playlist-delete").addEventListener("click", guard(deletePlaylist));
  $("playlist-visibility").addEventListener("change", guard(setVisibility));
  $("collab-form").addEventListener("submit", guard(addCollaborator));
  $("playlist-play").addEventListener(
    "click",
    guard(async () => {
      const tracks = state.playlistItems.map((i) => i.track);
      if (tracks.length) await playList(tracks, "playlist", 0);
    }),
  );
}
