// main.js: the Baton web app. Signs in (a token typed once, or the
// one-time code of a QR in the address's #login=), offers to approve a
// laptop whose pairing QR opened the page (#pair=), keeps one WebSocket to
// the relay, polls the machines and sessions, and shows one view at a
// time from the address's hash: #/ home, #/s/<id> a session.

import { login, logout } from './api.js';
import { Conn } from './conn.js';
import { fill, h } from './dom.js';
import { homeView } from './home.js';
import { notifyReset, toast, watchList } from './notify.js';
import { sessionView } from './session.js';
import { signinView } from './signin.js';

const POLL_MS = 3000;

const app = {
  conn: null,
  user: '',
  signedIn: false,
  machines: [],
  sessions: [],
  view: null,	// {el, mounted(), update(), online(), output(), message(),
		// close()}
  poller: 0,
  pairCode: '',	// from #pair=: asked about once signed in
  refresh,
  signOut,
  go,
  toast,
};

const main = document.getElementById('view');
const back = document.getElementById('back');
const who = document.getElementById('who');
const link = document.getElementById('link');
const signOutButton = document.getElementById('signout');
const banner = document.getElementById('banner');

// Shows a view in the main area, closing the one before.
function show(view) {
  if (app.view && app.view.close) app.view.close();
  app.view = view;
  fill(main, view.el);
  if (view.mounted) view.mounted();
  if (view.focus) view.focus();
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (!app.signedIn) return;
  const m = /^#\/s\/([0-9a-fA-F-]{36})$/.exec(location.hash);
  back.hidden = !m;
  if (m) show(sessionView(app, m[1].toLowerCase()));
  else show(homeView(app));
}

function setLink(state, text) {
  link.className = `link ${state}`;
  link.title = text;
  link.setAttribute('aria-label', text);
  banner.hidden = state !== 'down';
  banner.textContent = state === 'down' ? text : '';
}

// Fetches both lists, then lets the view and the notices see them.
async function refresh() {
  if (!app.conn || !app.conn.up) return;
  try {
    const [m, s] = await Promise.all([
      app.conn.request('machines.list'),
      app.conn.request('sessions.list'),
    ]);
    app.machines = Array.isArray(m.body.machines) ? m.body.machines : [];
    app.sessions = Array.isArray(s.body.sessions) ? s.body.sessions : [];
  } catch {
    return;	// offline: the banner says so, the next poll tries again
  }
  watchList(app.sessions, app.view && app.view.sessionId);
  if (app.view && app.view.update) app.view.update();
}

// The QR code `baton-local pair` shows opens /#pair=CODE: a signed-in
// user approves the laptop here, as `baton pair approve CODE` would.
function offerPairing() {
  const code = app.pairCode;
  const shown = code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` :
    code;
  let box = null;
  const done = (text) => {
    box.remove();
    if (text) toast(text);
  };
  const approve = async () => {
    try {
      const r = await app.conn.request('pair.approve', { code });
      done(`Paired ${r.body.name}: it is one of your machines now.`);
      refresh();
    } catch (e) {
      done(e.message);
    }
  };

  app.pairCode = '';
  box = h('div', { class: 'panel pairing', id: 'pairing', role: 'dialog',
    'aria-label': 'Pair a laptop' },
  h('p', {}, 'A laptop is waiting to be paired with code ',
    h('strong', { class: 'mono' }, shown),
    '. Approve it only if you started `baton-local pair` yourself.'),
  h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'primary', id: 'pair-approve',
      onclick: approve }, 'Approve'),
    h('button', { type: 'button', onclick: () => done('') }, 'Not now')));
  main.before(box);
}

function signedIn(body) {
  const first = !app.signedIn;

  app.signedIn = true;
  app.user = body.user || '';
  who.textContent = app.user;
  signOutButton.hidden = false;
  setLink('up', `Connected as ${app.user}`);
  if (!app.poller) app.poller = setInterval(refresh, POLL_MS);
  if (first) route();
  else if (app.view && app.view.online) app.view.online();
  if (app.pairCode) offerPairing();
  refresh();
}

// Shows the sign-in screen, with a sentence saying why when there is one.
function signedOut(why) {
  app.signedIn = false;
  app.user = '';
  app.machines = [];
  app.sessions = [];
  clearInterval(app.poller);
  app.poller = 0;
  notifyReset();
  who.textContent = '';
  signOutButton.hidden = true;
  back.hidden = true;
  setLink('off', 'Signed out');
  show(signinView(why, signInWith));
}

// Posts a credential, then connects; rejects with a sentence.
async function signInWith(credential) {
  await login(credential);
  connect();
}

function connect() {
  if (app.conn) app.conn.stop();
  app.conn = new Conn({
    welcome: signedIn,
    signedOut: () => signedOut(app.signedIn ?
      'Your sign-in has ended; sign in again.' : ''),
    down: (text) => setLink('down', text),
    message: (msg) => {
      if (app.view && app.view.message) app.view.message(msg);
    },
    output: (frame) => {
      if (app.view && app.view.output) app.view.output(frame);
    },
  });
  setLink('connecting', 'Connecting…');
  app.conn.start();
}

async function signOut() {
  signOutButton.disabled = true;
  try {
    await logout();
  } catch (e) {
    toast(e.message);
  } finally {
    signOutButton.disabled = false;
  }
  if (app.conn) app.conn.stop();
  app.conn = null;
  history.replaceState(null, '', location.pathname + location.search);
  signedOut('You are signed out.');
}

// Takes a pairing code out of the address (#pair=CODE); true if one was.
function takePairCode() {
  const pair = /^#pair=([A-Za-z0-9-]{1,16})$/.exec(location.hash);

  if (!pair) return false;
  app.pairCode = pair[1].replace(/-/g, '').toUpperCase();
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return true;
}

// A QR code from `baton login --qr` opens /#login=CODE: the code leaves the
// address bar at once and is spent on the relay.
async function start() {
  const m = /^#login=([A-Za-z0-9 -]{1,64})$/.exec(location.hash);

  back.addEventListener('click', () => go('#/'));
  signOutButton.addEventListener('click', signOut);
  window.addEventListener('hashchange', () => {
    if (takePairCode() && app.signedIn) offerPairing();
    route();
  });
  takePairCode();
  if (!m) {
    connect();
    return;
  }
  history.replaceState(null, '', location.pathname + location.search);
  show({ el: h('p', { class: 'note' }, 'Signing in…') });
  try {
    await signInWith({ code: m[1] });
  } catch (e) {
    signedOut(e.message);
  }
}

start();
