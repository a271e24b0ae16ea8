// seen.js: the last transcript seq this browser showed of each session,
// kept in localStorage (a seq is no secret), so the home page can mark the
// sessions whose output arrived since.

const KEY = 'baton.seen';
const MAX = 200;

function load() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}

// Returns the last seq seen of a session, as a BigInt (0n when never).
export function seenGet(id) {
  const v = load()[id];
  try {
    return typeof v === 'string' ? BigInt(v) : 0n;
  } catch {
    return 0n;
  }
}

// Records seq as seen, if it is beyond what was.
export function seenSet(id, seq) {
  const all = load();
  const old = typeof all[id] === 'string' ? BigInt(all[id]) : 0n;

  if (seq <= old) return;
  delete all[id];
  all[id] = seq.toString();
  const ids = Object.keys(all);
  for (const k of ids.slice(0, Math.max(0, ids.length - MAX))) delete all[k];
  try {
    localStorage.setItem(KEY, JSON.stringify(all));
  } catch {
    // storage full or disabled: the dots are only a convenience
  }
}

// Tells whether the session has output beyond what was seen.
export function unseen(session) {
  try {
    return BigInt(session.seq || '0') > seenGet(session.id);
  } catch {
    return false;
  }
}
