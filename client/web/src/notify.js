// notify.js: toasts, and the notice that a session which was producing
// output has gone quiet (its agent is probably waiting for the user).
// Activity comes from live output on the open session and from the seq
// of every session in the lists the app polls.

import { h, shortId } from './dom.js';

const QUIET_MS = 5000;
const TOAST_MS = 7000;

let area = null;
const active = new Map();	// session id -> {at, label}
const lastSeq = new Map();	// session id -> seq string of the last poll
let timer = 0;

// Shows a message for a few seconds; onclick runs when it is tapped.
export function toast(text, onclick) {
  if (!area) area = document.getElementById('toasts');
  const el = h('button', { class: 'toast', type: 'button' }, text);
  const close = () => el.remove();

  el.addEventListener('click', () => {
    close();
    if (onclick) onclick();
  });
  area.append(el);
  setTimeout(close, TOAST_MS);
}

function label(s) {
  return s && s.agent ? `${shortId(s.id)} (${s.agent})` : shortId(s.id);
}

// Notes output of a session now.
export function activity(session) {
  active.set(session.id, { at: Date.now(), label: label(session) });
  if (!timer) timer = setInterval(check, 1000);
}

function check() {
  const now = Date.now();

  for (const [id, a] of active) {
    if (now - a.at < QUIET_MS) continue;
    active.delete(id);
    quiet(id, a.label);
  }
  if (active.size === 0) {
    clearInterval(timer);
    timer = 0;
  }
}

function quiet(id, name) {
  const text = `${name} is quiet — the agent may be waiting for you`;

  toast(text, () => { location.hash = `#/s/${id}`; });
  if (typeof Notification !== 'undefined' &&
      Notification.permission === 'granted' &&
      document.visibilityState !== 'visible') {
    try {
      new Notification('Baton', { body: text, tag: `quiet-${id}` });
    } catch {
      // some browsers allow notifications only from a service worker
    }
  }
}

// Compares a polled session list with the last one: a seq that grew is
// activity. openId, the session on screen, is followed by its live output
// instead.
export function watchList(sessions, openId) {
  for (const s of sessions) {
    const prev = lastSeq.get(s.id);
    lastSeq.set(s.id, s.seq);
    if (s.id === openId || prev === undefined || prev === s.seq) continue;
    activity(s);
  }
}

// Forgets everything (sign-out).
export function notifyReset() {
  active.clear();
  lastSeq.clear();
}
