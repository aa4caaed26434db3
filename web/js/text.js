// Text from the server made safe to show, and times made readable. Everything the page
// shows from the server goes through textContent; this only keeps a text from moving
// what surrounds it.

// C0 and C1 control characters (newline and tab excepted: a message may hold them),
// and the bidirectional embeddings, overrides and isolates that could make a text, or
// what follows it, read backwards.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

// The text with every unsafe character shown as its escape (\x1b, \u202e), as the
// terminal client shows them.
export function neutralise(text) {
  return String(text).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? "\\x" + code.toString(16).padStart(2, "0")
      : "\\u" + code.toString(16).padStart(4, "0");
  });
}

// "14:03" for a time of today, "2026-11-26 18:02" for another day.
export function shortTime(ts) {
  const d = new Date(ts);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === new Date().toDateString()) return hm;
  const ymd = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${ymd} ${hm}`;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

// A random hex string of `bytes` bytes (crypto.randomUUID needs a secure context; this
// works on a plain http:// page on the LAN too).
export function randomHex(bytes) {
  const a = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}
