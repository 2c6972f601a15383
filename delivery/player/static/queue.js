// The play queue: an ordered list of entries, the one playing, shuffle and repeat.
// Pure data (no DOM, no audio), so its rules read in one place.

let nextKey = 1;

function entry(track, context) {
  return { key: nextKey++, track, context };
}

export const REPEAT_MODES = ["off", "all", "one"];

export class Queue {
  constructor() {
    this.items = []; // {key, track, context}
    this.index = -1;
    this.shuffle = false;
    this.repeat = "off";
    this.unshuffled = null; // keys in the order before shuffling
  }

  get current() {
    return this.items[this.index] || null;
  }

  get upcoming() {
    return this.items.slice(this.index + 1);
  }

  /** Play `tracks` from `start`: the queue becomes that list (shuffled after the
   *  chosen track when shuffle is on). */
  replace(tracks, context, start = 0) {
    this.items = tracks.map((t) => entry(t, context));
    this.index = Math.min(Math.max(0, start), this.items.length - 1);
    this.unshuffled = null;
    if (this.shuffle) this._shuffleUpcoming();
  }

  /** Insert right after the track playing. */
  playNext(track, context) {
    const e = entry(track, context);
    this.items.splice(this.index + 1, 0, e);
    if (this.unshuffled) this.unshuffled.push(e.key);
    if (this.index < 0) this.index = 0;
    return e;
  }

  /** Append at the end. */
  add(track, context) {
    const e = entry(track, context);
    this.items.push(e);
    if (this.unshuffled) this.unshuffled.push(e.key);
    if (this.index < 0) this.index = 0;
    return e;
  }

  move(from, to) {
    if (from === to || from < 0 || to < 0 || from >= this.items.length || to >= this.items.length) {
      return false;
    }
    const playing = this.current;
    const [e] = this.items.splice(from, 1);
    this.items.splice(to, 0, e);
    this.index = this.items.indexOf(playing);
    return true;
  }

  /** Remove entry `i`; returns true when it was the one playing. */
  remove(i) {
    if (i < 0 || i >= this.items.length) return false;
    const wasCurrent = i === this.index;
    const [e] = this.items.splice(i, 1);
    if (this.unshuffled) this.unshuffled = this.unshuffled.filter((k) => k !== e.key);
    if (i < this.index) this.index -= 1;
    if (this.index >= this.items.length) this.index = this.items.length - 1;
    return wasCurrent;
  }

  clear() {
    this.items = [];
    this.index = -1;
    this.unshuffled = null;
  }

  /** The index to play after the current one; -1 at the end. `auto`: the track ended
   *  by itself (repeat one replays it; a press of "next" moves on). */
  nextIndex(auto) {
    if (!this.items.length) return -1;
    if (auto && this.repeat === "one") return this.index;
    if (this.index + 1 < this.items.length) return this.index + 1;
    return this.repeat === "all" ? 0 : -1;
  }

  previousIndex() {
    if (this.index > 0) return this.index - 1;
    return this.repeat === "all" && this.items.length ? this.items.length - 1 : -1;
  }

  cycleRepeat() {
    this.repeat = REPEAT_MODES[(REPEAT_MODES.indexOf(this.repeat) + 1) % REPEAT_MODES.length];
    return this.repeat;
  }

  setShuffle(on) {
    if (on === this.shuffle) return;
    this.shuffle = on;
    if (on) {
      this._shuffleUpcoming();
    } else if (this.unshuffled) {
      // Back to the order the tracks were queued in; the one playing stays current.
      const playing = this.current;
      const rank = new Map(this.unshuffled.map((k, i) => [k, i]));
      this.items.sort((a, b) => (rank.get(a.key) ?? 1e9) - (rank.get(b.key) ?? 1e9));
      this.index = this.items.indexOf(playing);
      this.unshuffled = null;
    }
  }

  _shuffleUpcoming() {
    this.unshuffled = this.items.map((e) => e.key);
    const head = this.items.slice(0, this.index + 1);
    const rest = this.items.slice(this.index + 1);
    if (rest.length < 2) return;
    const before = rest.map((e) => e.key).join();
    // Fisher-Yates, drawn again while the order is unchanged: a shuffle that leaves the
    // upcoming tracks as they were looks broken to a listener.
    do {
      for (let i = rest.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [rest[i], rest[j]] = [rest[j], rest[i]];
      }
    } while (rest.map((e) => e.key).join() === before);
    this.items = [...head, ...rest];
  }

  toJSON() {
    const keys = this.unshuffled;
    return {
      items: this.items.map((e) => ({ track: e.track, context: e.context })),
      index: this.index,
      shuffle: this.shuffle,
      repeat: this.repeat,
      unshuffled: keys ? keys.map((k) => this.items.findIndex((e) => e.key === k)) : null,
    };
  }

  static fromJSON(data) {
    const q = new Queue();
    if (!data || !Array.isArray(data.items)) return q;
    q.items = data.items.filter((e) => e && e.track && e.track.id).map((e) => entry(e.track, e.context));
    q.index = Number.isInteger(data.index) ? Math.min(data.index, q.items.length - 1) : -1;
    if (q.items.length && q.index < 0) q.index = 0;
    q.shuffle = data.shuffle === true;
    q.repeat = REPEAT_MODES.includes(data.repeat) ? data.repeat : "off";
    if (q.shuffle && Array.isArray(data.unshuffled)) {
      q.unshuffled = data.unshuffled.filter((i) => q.items[i]).map((i) => q.items[i].key);
    }
    return q;
  }
}
