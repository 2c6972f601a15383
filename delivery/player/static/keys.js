// Keyboard shortcuts and their help overlay (press ?).

import { $, showError } from "./lib.js";
import { next, previous, seekBy, toggleMute, togglePlay } from "./playback.js";

export const SHORTCUTS = [
  ["Space", "play / pause"],
  ["← / →", "seek back / forward 5 s"],
  ["Shift+←, P", "previous track"],
  ["Shift+→, N", "next track"],
  ["M", "mute / unmute"],
  ["/", "search"],
  ["?", "this help"],
  ["Esc", "close this help"],
];

/** Typing in a field (or choosing in a list): keys belong to it, not to the player. */
function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  return !["range", "checkbox", "radio", "button", "submit"].includes(target.type);
}

export function toggleHelp(show) {
  const help = $("help");
  const open = show === undefined ? help.hidden : show;
  help.hidden = !open;
  if (open) $("help-close").focus();
}

function run(promise) {
  Promise.resolve(promise).catch(showError);
}

export function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "Escape" && !$("help").hidden) {
    toggleHelp(false);
    e.preventDefault();
    return;
  }
  if (typing(e.target)) return;
  const key = e.key;
  // A slider's arrows move the slider (seek, volume) as they natively do.
  if (e.target instanceof HTMLInputElement && e.target.type === "range" && key.startsWith("Arrow")) return;
  let handled = true;
  if (key === " " || key === "Spacebar") run(togglePlay());
  else if (key === "ArrowLeft" && e.shiftKey) run(previous());
  else if (key === "ArrowRight" && e.shiftKey) run(next(false));
  else if (key === "ArrowLeft") seekBy(-5);
  else if (key === "ArrowRight") seekBy(5);
  else if (key === "n" || key === "N") run(next(false));
  else if (key === "p" || key === "P") run(previous());
  else if (key === "m" || key === "M") toggleMute();
  else if (key === "/") {
    const q = $("search-q");
    if (q && q.offsetParent !== null) q.focus();
    else handled = false;
  } else if (key === "?") toggleHelp();
  else handled = false;
  if (handled) e.preventDefault();
}

export function wireKeys() {
  document.addEventListener("keydown", onKey);
  $("help-open").addEventListener("click", () => toggleHelp(true));
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("help").addEventListener("click", (e) => {
    if (e.target === $("help")) toggleHelp(false);
  });
  const list = $("help-list");
  list.replaceChildren();
  for (const [keys, what] of SHORTCUTS) {
    const dt = document.createElement("dt");
    dt.textContent = keys;
    const dd = document.createElement("dd");
    dd.textContent = what;
    list.append(dt, dd);
  }
}
