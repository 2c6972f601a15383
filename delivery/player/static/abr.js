// Adaptive bitrate. The stream answer signs every rendition the listener may play, so
// switching costs no round trip to delivery: on repeated stalls, a long one, or a
// measured throughput below the rendition's real bitrate the player steps down a rung
// and carries on at the same position; after sustained good throughput it steps back
// up (never above the quality the listener chose).
//
// Throughput is measured by timing a small ranged GET of a rendition from the edge
// (the media element does not say how fast its bytes arrive).

import { $, hooks, state } from "./lib.js";

const STALL_WINDOW_MS = 30000; // two stalls within this: step down
const LONG_STALL_MS = 4000; // one stall this long: step down
const SWITCH_COOLDOWN_MS = 6000; // no other step down this soon after a switch
const PROBE_EVERY_MS = 4000;
const PROBE_AT_TOP_EVERY_MS = 15000;
const PROBE_BYTES = 32 * 1024;
const UP_HEADROOM = 2.0; // step up when throughput >= 2x the higher rung's real bitrate
const DOWN_MARGIN = 1.1; // step down when throughput < 1.1x the current rung's
const GOOD_PROBES_TO_STEP_UP = 2;
const LOW_BUFFER_S = 8; // a slow probe steps down only with less than this buffered ahead
const QUIET_BEFORE_UP_MS = 8000; // and no stall for this long

export const abr = {
  enabled: true,
  log: [], // {at, from, to, reason, position, resumedAt, kbps}
  stalls: [],
  stallStart: null,
  settling: true, // after a load or seek, 'waiting' is expected until 'playing'
  lastSwitch: 0,
  lastStall: 0,
  goodProbes: 0,
  probing: false,
  lastProbe: 0,
  throughputKbps: null,
  probes: 0,
};

const now = () => performance.now();

function rungs() {
  const cur = state.current;
  if (!cur) return [];
  // The ceiling is what the listener asked for (quality), the floor the lowest rendition.
  return (cur.answer.renditions || [])
    .filter((r) => r.bitrate_kbps <= cur.answer.bitrate_kbps)
    .sort((a, b) => a.bitrate_kbps - b.bitrate_kbps);
}

function realKbps(r) {
  return typeof r.avg_bitrate_kbps === "number" && r.avg_bitrate_kbps > 0 ? r.avg_bitrate_kbps : r.bitrate_kbps;
}

/** The rendition playing now (what ABR chose, or the answer's own). */
export function abrRendition() {
  const cur = state.current;
  const found = (cur.answer.renditions || []).find((r) => r.bitrate_kbps === cur.bitrate);
  return found || { bitrate_kbps: cur.answer.bitrate_kbps, url: cur.answer.url };
}

/** A new stream answer was loaded: start afresh at its bitrate. */
export function abrLoaded() {
  abr.stalls = [];
  abr.stallStart = null;
  abr.settling = true;
  abr.goodProbes = 0;
  abr.lastSwitch = now();
  abr.lastProbe = now();
}

async function switchTo(rendition, reason, kbps = null) {
  const cur = state.current;
  const a = $("audio");
  const position = a.currentTime;
  const wasPlaying = !a.paused;
  const record = {
    at: Date.now(),
    from: cur.bitrate,
    to: rendition.bitrate_kbps,
    reason,
    position,
    resumedAt: null,
    kbps: kbps === null ? null : Math.round(kbps),
  };
  abr.log.push(record);
  cur.bitrate = rendition.bitrate_kbps;
  if (state.play) {
    state.play.bitrate = rendition.bitrate_kbps;
    state.play.last = null;
  }
  abr.stalls = [];
  abr.stallStart = null;
  abr.settling = true;
  abr.goodProbes = 0;
  abr.lastSwitch = now();
  a.addEventListener(
    "playing",
    () => {
      record.resumedAt = a.currentTime;
    },
    { once: true },
  );
  a.src = rendition.url;
  a.currentTime = position; // the default playback start position of the new resource
  hooks.renderBitrate();
  if (wasPlaying) await a.play().catch(() => {});
}

function stepDown(reason, kbps = null) {
  const list = rungs();
  const i = list.findIndex((r) => r.bitrate_kbps === state.current.bitrate);
  if (i <= 0) return false;
  let target = i - 1;
  if (kbps !== null) {
    // Measured: go straight to the highest rung the throughput carries (at least one down).
    while (target > 0 && realKbps(list[target]) * DOWN_MARGIN > kbps) target -= 1;
  }
  switchTo(list[target], reason, kbps);
  return true;
}

function stepUp(kbps) {
  const list = rungs();
  const i = list.findIndex((r) => r.bitrate_kbps === state.current.bitrate);
  let target = i;
  while (target + 1 < list.length && realKbps(list[target + 1]) * UP_HEADROOM <= kbps) target += 1;
  if (target <= i) return false;
  switchTo(list[target], "sustained throughput", kbps);
  return true;
}

/** Seconds of media buffered ahead of the playhead. */
function bufferedAhead(a) {
  const t = a.currentTime;
  for (let i = 0; i < a.buffered.length; i++) {
    if (a.buffered.start(i) <= t + 0.1 && a.buffered.end(i) > t) return a.buffered.end(i) - t;
  }
  return 0;
}

/** A stall the network caused: nothing left in the buffer. (A busy CPU stalls with data
 *  in hand; a lower bitrate would not help that.) */
function starved(a) {
  return bufferedAhead(a) < 1 && !(isFinite(a.duration) && a.currentTime >= a.duration - 0.5);
}

/** Not at the end of the media (where nothing more needs to arrive). */
function starvedSoon(a) {
  const t = a.currentTime + bufferedAhead(a);
  return !(isFinite(a.duration) && t >= a.duration - 0.5);
}

function onWaiting() {
  const a = $("audio");
  if (!state.current || abr.settling || a.seeking || !starved(a)) return;
  const t = now();
  abr.stallStart = t;
  abr.lastStall = t;
  abr.goodProbes = 0;
  abr.stalls = abr.stalls.filter((s) => t - s < STALL_WINDOW_MS);
  abr.stalls.push(t);
  if (abr.enabled && abr.stalls.length >= 2 && t - abr.lastSwitch > SWITCH_COOLDOWN_MS) {
    stepDown("repeated stalls");
  }
}

function onPlaying() {
  abr.settling = false;
  abr.stallStart = null;
}

async function probe() {
  const cur = state.current;
  if (!cur || abr.probing) return;
  const list = rungs();
  const i = list.findIndex((r) => r.bitrate_kbps === cur.bitrate);
  const target = list[Math.min(i + 1, list.length - 1)] || abrRendition();
  abr.probing = true;
  abr.lastProbe = now();
  try {
    const t0 = now();
    const r = await fetch(target.url, { headers: { Range: `bytes=0-${PROBE_BYTES - 1}` }, cache: "no-store" });
    if (!r.ok) return;
    const bytes = (await r.arrayBuffer()).byteLength;
    const ms = Math.max(1, now() - t0);
    if (bytes < 1024 || state.current !== cur) return;
    const kbps = (bytes * 8) / ms; // bits per ms = kbit/s
    abr.throughputKbps = kbps;
    abr.probes += 1;
    decide(kbps);
  } catch (_) {
    /* a failed probe says nothing about the media's own connection */
  } finally {
    abr.probing = false;
  }
}

function decide(kbps) {
  const cur = state.current;
  const a = $("audio");
  if (!abr.enabled || !cur || a.paused) return;
  const playing = abrRendition();
  const t = now();
  if (kbps < realKbps(playing) * DOWN_MARGIN) {
    abr.goodProbes = 0;
    // Only while the buffer runs low: a slow probe beside a healthy buffer is no reason
    // to give up quality (and a busy machine makes probes slow too).
    const low = bufferedAhead(a) < LOW_BUFFER_S && starvedSoon(a);
    if (low && t - abr.lastSwitch > SWITCH_COOLDOWN_MS) stepDown("slow throughput", kbps);
    return;
  }
  const list = rungs();
  const i = list.findIndex((r) => r.bitrate_kbps === cur.bitrate);
  const higher = list[i + 1];
  if (!higher) return;
  if (realKbps(higher) * UP_HEADROOM <= kbps) abr.goodProbes += 1;
  else abr.goodProbes = 0;
  const quiet = t - abr.lastStall > QUIET_BEFORE_UP_MS && abr.stallStart === null;
  if (abr.goodProbes >= GOOD_PROBES_TO_STEP_UP && quiet && !abr.settling) stepUp(kbps);
}

function tick() {
  const cur = state.current;
  const a = $("audio");
  if (!abr.enabled || !cur || a.paused || a.ended) return;
  const t = now();
  // Stuck waiting for data (a stall, or a start that never gets going): step down.
  // (stallStart: since a 'waiting'; settling: a load that has not played yet.)
  const since = abr.stallStart ?? (abr.settling ? abr.lastSwitch : null);
  const stuck = since !== null && a.readyState < 3 && !a.seeking && starved(a) ? since : null;
  if (stuck !== null && t - stuck > LONG_STALL_MS && t - abr.lastSwitch > SWITCH_COOLDOWN_MS) {
    stepDown("long stall");
    return;
  }
  // Below the ceiling, probe often (a step up waits on it); at the ceiling only now and
  // then, and not at all once the whole rendition is buffered: nothing left to protect.
  const list = rungs();
  const atTop = !list.length || list[list.length - 1].bitrate_kbps === cur.bitrate;
  const buffered = a.buffered.length ? a.buffered.end(a.buffered.length - 1) : 0;
  if (atTop && isFinite(a.duration) && buffered >= a.duration - 0.5) return;
  if (t - abr.lastProbe > (atTop ? PROBE_AT_TOP_EVERY_MS : PROBE_EVERY_MS)) probe();
}

export function wireAbr() {
  const a = $("audio");
  a.addEventListener("waiting", onWaiting);
  a.addEventListener("playing", onPlaying);
  setInterval(tick, 1000);
}
