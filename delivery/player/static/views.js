// What the main panel shows, chosen by the address's #fragment (so Back works): home,
// search results, recently played, and the library (albums, artists, genres).

import {
  $,
  api,
  clearError,
  cover,
  el,
  formatDuration,
  guard,
  hooks,
  normTrack,
  plural,
  relative,
  say,
  showError,
  state,
  timeAgo,
} from "./lib.js";
import { markPlayingRows, playList, playQueued } from "./playback.js";
import { addToPlaylist } from "./playlists.js";

const PAGE = 48;

// -- track rows ------------------------------------------------------------------------

/** One track in a list: play (the list from here), play next, add to the queue, add to
 *  the open playlist, and what else `extra` adds. */
export function trackRow(track, index, context, list, { extra = [], meta = null, art = false } = {}) {
  const title = track.title;
  const playing = state.current && state.current.track.id === track.id;
  const sub = meta ?? [track.artist, track.album].filter(Boolean).join(" · ");
  return el(
    "li",
    { class: `track${playing ? " playing" : ""}`, dataset: { trackId: track.id } },
    el("button", {
      type: "button",
      class: "play",
      "aria-label": `Play ${title}`,
      disabled: !track.playable,
      onclick: guard(() => playList(list, context, index)),
      textContent: playing ? "♪" : "▶",
    }),
    art ? cover(track.art, { size: "small", label: track.album }) : null,
    el(
      "div",
      { class: "track-meta" },
      el("span", { class: "track-title", textContent: title }),
      el("span", { class: "muted", textContent: sub }),
    ),
    el(
      "span",
      { class: "muted track-facts" },
      track.plays !== null
        ? el("span", { class: "plays", title: "Plays", textContent: plural(track.plays, "play") })
        : null,
      el("span", { class: "duration", textContent: formatDuration(track.duration_ms) }),
    ),
    el(
      "span",
      { class: "row-actions" },
      el("button", {
        type: "button",
        class: "ghost small-btn queue-next",
        "aria-label": `Play ${title} next`,
        title: "Play next",
        disabled: !track.playable,
        onclick: () => enqueue(track, context, true),
        textContent: "⤵",
      }),
      el("button", {
        type: "button",
        class: "ghost small-btn queue-add",
        "aria-label": `Add ${title} to the queue`,
        title: "Add to the queue",
        disabled: !track.playable,
        onclick: () => enqueue(track, context, false),
        textContent: "≡+",
      }),
      ...extra,
    ),
  );
}

function enqueue(track, context, playNext) {
  const wasEmpty = !state.queue.current;
  if (playNext) state.queue.playNext(track, context);
  else state.queue.add(track, context);
  say(playNext ? `“${track.title}” plays next.` : `“${track.title}” added to the queue.`);
  hooks.renderQueue();
  hooks.saveSession(true);
  if (wasEmpty && !state.current) guard(playQueued)();
}

function addButton(track) {
  return el("button", {
    type: "button",
    class: "ghost small-btn add",
    "aria-label": `Add ${track.title} to the playlist`,
    title: "Add to the open playlist",
    onclick: guard(() => addToPlaylist(track)),
    textContent: "+",
  });
}

function trackList(id, tracks, context, options = {}) {
  return el(
    "ol",
    { class: "tracks", id, "aria-label": options.label || "Tracks" },
    ...tracks.map((t, i) =>
      trackRow(t, i, context, tracks, { extra: [addButton(t)], ...(options.row ? options.row(t, i) : {}) }),
    ),
  );
}

/** "Show more" under a paged list: fetches `page.next` and hands its items to `append`
 *  (which adds them to the list), until there is no next page. */
function moreButton(page, append) {
  if (!page.next) return null;
  let next = page.next;
  const button = el("button", { type: "button", class: "ghost more", textContent: "Show more" });
  button.addEventListener(
    "click",
    guard(async () => {
      button.disabled = true;
      const more = await api("GET", relative(next));
      append(more.items);
      next = more.next;
      button.disabled = false;
      if (!next) button.remove();
    }),
  );
  return button;
}

// -- routing -----------------------------------------------------------------------------

export function go(hash) {
  if (location.hash === hash) render().catch(showViewError);
  else location.hash = hash;
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name: parts[0] || "home", arg: parts.slice(1).join("/") };
}

function showViewError(err) {
  showError(err);
}

let renderSeq = 0;

export async function render() {
  if (!state.me) return;
  clearError();
  const seq = ++renderSeq;
  const { name, arg } = parseRoute();
  const view = VIEWS[name] || VIEWS.home;
  for (const tab of document.querySelectorAll("#nav a")) {
    tab.classList.toggle("active", tab.dataset.view === name);
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  const nodes = await view(arg);
  if (seq !== renderSeq) return; // a newer view was asked for meanwhile
  $("view").replaceChildren(...nodes);
  markPlayingRows();
}

export function wireViews() {
  window.addEventListener("hashchange", () => render().catch(showViewError));
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("search-q").value.trim();
    if (q) go(`#/search/${encodeURIComponent(q)}`);
  });
  for (const tab of document.querySelectorAll("#nav a")) {
    const needsLibrary = tab.dataset.library === "true";
    tab.hidden = needsLibrary && !(state.config && state.config.library);
  }
}

// -- views ---------------------------------------------------------------------------------

const heading = (text, id) => el("h2", { id, textContent: text });

async function homeView() {
  const out = [];
  const forYou = await api("GET", "/v1/me/recommendations", { query: { limit: 10 } });
  state.forYou = forYou.items.map(normTrack);
  if (state.config.library) {
    const [recent, albums] = await Promise.all([
      api("GET", "/v1/library/recent", { query: { limit: 10 } }),
      api("GET", "/v1/library/albums", { query: { sort: "added", limit: 12 } }),
    ]);
    out.push(heading("Albums", "albums-title"), albumGrid(albums.items, "home-albums"));
    const tracks = recent.items.map(normTrack);
    out.push(heading("Recently added", "recent-added-title"), trackList("recently-added", tracks, "library", { row: () => ({ art: true }) }));
  }
  out.push(
    heading("For you", "for-you-title"),
    el("p", {
      id: "for-you-summary",
      class: "muted",
      textContent: !state.forYou.length
        ? "Nothing to recommend yet: play a few tracks."
        : forYou.source === "popular"
          ? "Popular tracks (your own picks appear after the next recommendation build)."
          : "Picked from what you and listeners like you play.",
    }),
    trackList("for-you", state.forYou, "foryou", { label: "For you" }),
  );
  return out;
}

async function searchView(q) {
  $("search-q").value = q;
  const answer = await api("GET", "/v1/search", { query: { q, type: "track", limit: 20 } });
  state.results = answer.tracks.items.map(normTrack);
  const n = answer.tracks.total;
  return [
    heading("Search", "search-title"),
    el("p", {
      id: "results-summary",
      class: "muted",
      textContent: n === 0 ? `No track matches “${q}”.` : `${plural(n, "track")} for “${q}”`,
    }),
    trackList("results", state.results, "search", { label: "Search results" }),
  ];
}

async function recentView() {
  const page = await api("GET", "/v1/me/player/recently-played", { query: { limit: 50 } });
  const items = page.items.filter((i) => i.track);
  const tracks = items.map((i) => normTrack(i.track));
  return [
    heading("Recently played", "recent-title"),
    el("p", { class: "muted", textContent: items.length ? plural(items.length, "play") : "Nothing played yet." }),
    trackList("recent", tracks, "recent", {
      label: "Recently played",
      row: (t, i) => ({
        meta: [t.artist, timeAgo(items[i].played_at)].filter(Boolean).join(" · "),
      }),
    }),
  ];
}

// -- the library ---------------------------------------------------------------------------

function albumTitle(a) {
  return a.title || a.name || a.album || a.id;
}

function albumArtist(a) {
  return a.artist || a.album_artist || (Array.isArray(a.artists) && a.artists[0] ? a.artists[0].name : "");
}

function albumGrid(albums, id) {
  return el(
    "ul",
    { class: "grid", id, "aria-label": "Albums" },
    ...albums.map((a) =>
      el(
        "li",
        { class: "card", dataset: { albumId: a.id } },
        el(
          "a",
          { href: `#/album/${encodeURIComponent(a.id)}`, class: "card-link" },
          cover(a.art, { label: albumTitle(a) }),
          el("span", { class: "card-title", textContent: albumTitle(a) }),
          el("span", {
            class: "muted card-sub",
            textContent: [albumArtist(a), a.year].filter(Boolean).join(" · "),
          }),
        ),
      ),
    ),
  );
}

function sortSelect(id, options, current, route) {
  const select = el(
    "select",
    { id, "aria-label": "Sort by" },
    ...options.map((o) => el("option", { value: o, textContent: `by ${o}` })),
  );
  select.value = current;
  select.addEventListener("change", () => go(`${route}/${select.value}`));
  return el("p", { class: "row" }, el("label", { for: id, textContent: "Sort" }), select);
}

async function albumsView(sort) {
  sort = ["added", "title", "artist", "year", "plays"].includes(sort) ? sort : "added";
  const page = await api("GET", "/v1/library/albums", { query: { sort, limit: PAGE } });
  const grid = albumGrid(page.items, "albums");
  return [
    heading("Albums", "albums-title"),
    sortSelect("albums-sort", ["added", "title", "artist", "year", "plays"], sort, "#/albums"),
    el("p", { class: "muted", textContent: plural(page.total, "album") }),
    grid,
    moreButton(page, (items) => grid.append(...albumGrid(items, "").children)),
  ].filter(Boolean);
}

async function albumView(id) {
  const album = await api("GET", `/v1/library/albums/${encodeURIComponent(id)}`);
  const tracks = (album.tracks && album.tracks.items ? album.tracks.items : album.tracks || []).map(normTrack);
  const artistId = album.artist_id || (tracks[0] && tracks[0].artist_id);
  return [
    el(
      "div",
      { class: "hero" },
      cover(album.art, { size: "large", label: albumTitle(album) }),
      el(
        "div",
        {},
        el("h2", { id: "album-title", textContent: albumTitle(album) }),
        el(
          "p",
          { class: "muted" },
          artistId
            ? el("a", { href: `#/artist/${encodeURIComponent(artistId)}`, textContent: albumArtist(album) })
            : albumArtist(album),
          [album.year, plural(tracks.length, "track")].filter(Boolean).map((x) => ` · ${x}`).join(""),
        ),
        el("button", {
          type: "button",
          id: "album-play",
          textContent: "Play album",
          disabled: !tracks.length,
          onclick: guard(() => playList(tracks, "album", 0)),
        }),
      ),
    ),
    trackList("album-tracks", tracks, "album", {
      label: "Album tracks",
      row: (t) => ({ meta: t.artist !== albumArtist(album) ? t.artist : "" }),
    }),
  ];
}

async function artistsView(sort) {
  sort = ["name", "plays"].includes(sort) ? sort : "name";
  const page = await api("GET", "/v1/library/artists", { query: { sort, limit: PAGE } });
  const grid = el("ul", { class: "grid", id: "artists", "aria-label": "Artists" }, ...page.items.map(artistCard));
  return [
    heading("Artists", "artists-title"),
    sortSelect("artists-sort", ["name", "plays"], sort, "#/artists"),
    grid,
    moreButton(page, (items) => grid.append(...items.map(artistCard))),
  ].filter(Boolean);
}

function artistCard(a) {
  const facts = [
    typeof a.album_count === "number" ? plural(a.album_count, "album") : "",
    typeof a.plays === "number" ? plural(a.plays, "play") : "",
  ];
  return el(
    "li",
    { class: "card", dataset: { artistId: a.id } },
    el(
      "a",
      { href: `#/artist/${encodeURIComponent(a.id)}`, class: "card-link" },
      cover(a.art, { size: "round", label: a.name }),
      el("span", { class: "card-title", textContent: a.name }),
      el("span", { class: "muted card-sub", textContent: facts.filter(Boolean).join(" · ") }),
    ),
  );
}

async function artistView(id) {
  const artist = await api("GET", `/v1/library/artists/${encodeURIComponent(id)}`);
  const albums = artist.albums && artist.albums.items ? artist.albums.items : artist.albums || [];
  const top = (artist.top_tracks && artist.top_tracks.items ? artist.top_tracks.items : artist.top_tracks || []).map(
    normTrack,
  );
  return [
    el("h2", { id: "artist-title", textContent: artist.name }),
    el("p", { class: "muted", textContent: [plural(albums.length, "album"), typeof artist.plays === "number" ? plural(artist.plays, "play") : ""].filter(Boolean).join(" · ") }),
    heading("Top tracks", "top-tracks-title"),
    trackList("top-tracks", top, "artist", { label: "Top tracks", row: () => ({ art: true }) }),
    heading("Albums", "artist-albums-title"),
    albumGrid(albums, "artist-albums"),
  ];
}

async function genresView() {
  const page = await api("GET", "/v1/library/genres", { query: { limit: 50 } });
  const items = page.items || [];
  return [
    heading("Genres", "genres-title"),
    el(
      "ul",
      { class: "chips", id: "genres", "aria-label": "Genres" },
      ...items.map((g) => {
        const name = typeof g === "string" ? g : g.name;
        const count = typeof g === "object" && typeof g.track_count === "number" ? ` (${g.track_count})` : "";
        return el(
          "li",
          { dataset: { genre: name } },
          el("a", { href: `#/genre/${encodeURIComponent(name)}`, class: "chip", textContent: `${name}${count}` }),
        );
      }),
    ),
  ];
}

async function genreView(name) {
  const page = await api("GET", `/v1/library/genres/${encodeURIComponent(name)}/tracks`, { query: { limit: PAGE } });
  const tracks = page.items.map(normTrack);
  const options = { label: `${name} tracks`, row: () => ({ art: true }) };
  const list = trackList("genre-tracks", tracks, "genre", options);
  return [
    el("h2", { id: "genre-title", textContent: name }),
    el("p", { class: "muted", textContent: plural(page.total, "track") }),
    list,
    moreButton(page, (items) => {
      // One list: playing any row plays the genre from there, the new rows included.
      tracks.push(...items.map(normTrack));
      list.replaceWith(trackList("genre-tracks", tracks, "genre", options));
    }),
  ].filter(Boolean);
}

const VIEWS = {
  home: homeView,
  search: searchView,
  recent: recentView,
  albums: albumsView,
  album: albumView,
  artists: artistsView,
  artist: artistView,
  genres: genresView,
  genre: genreView,
};
