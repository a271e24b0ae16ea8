// session.js: one session's page: a live terminal (xterm.js, fitted to the
// screen) that replays the transcript once and follows it, an input bar
// and the keys a phone keyboard lacks, moving (with the relay's steps as
// they come), the sandbox's setup log, and stop.
//
// The page remembers the last seq it wrote into the terminal. After a
// lost connection it attaches again from there, and drops any chunk at or
// below it, so nothing shows twice.

import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { fill, h, sentence, shortId } from './dom.js';
import { KIND_OUTPUT } from './frames.js';
import { activity, toast } from './notify.js';
import { seenSet } from './seen.js';

const FONT_SIZE = 12;
const FONT = 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace';
const STOP_ARM_MS = 4000;

// Keys a phone keyboard lacks: label, name for screen readers, bytes
// (arrows depend on the terminal's cursor key mode).
const KEYS = [
  ['Esc', 'Escape', () => '\x1b'],
  ['Tab', 'Tab', () => '\t'],
  ['^C', 'Control C', () => '\x03'],
  ['↑', 'Up', (t) => arrow(t, 'A')],
  ['↓', 'Down', (t) => arrow(t, 'B')],
  ['←', 'Left', (t) => arrow(t, 'D')],
  ['→', 'Right', (t) => arrow(t, 'C')],
  ['⏎', 'Enter', () => '\r'],
];

function arrow(term, c) {
  return term.modes.applicationCursorKeysMode ? `\x1bO${c}` : `\x1b[${c}`;
}

// A terminal size for a session started from this screen, before its
// page measures the real one.
export function termSizeGuess() {
  const ctx = document.createElement('canvas').getContext('2d');
  let w = FONT_SIZE * 0.6;

  if (ctx) {
    ctx.font = `${FONT_SIZE}px ${FONT}`;
    w = ctx.measureText('W'.repeat(20)).width / 20 || w;
  }
  const cols = Math.floor((window.innerWidth - 12) / w);
  const rows = Math.floor((window.innerHeight - 300) / (FONT_SIZE * 1.2));
  return {
    cols: Math.max(20, Math.min(cols, 300)),
    rows: Math.max(8, Math.min(rows, 200)),
  };
}

function describe(s) {
  if (!s) return '';
  const state = s.state === 'exited' && s.exit_status >= 0 ?
    `exited (${s.exit_status})` : s.state;
  const where = s.kind === 'sandbox' && s.machine_state ?
    `${s.machine} (sandbox, ${s.machine_state})` : `${s.machine} (${s.kind})`;
  return `${s.agent || ''} · ${where} · ${state}`;
}

export function sessionView(app, id) {
  let info = app.sessions.find((s) => s.id === id) || null;
  let lastSeq = 0n;	// the last chunk written into the terminal
  let liveFrom = null;	// chunks after this seq arrived live
  let gone = false;	// closed, or no such session
  let disposed = false;
  let moving = false;
  let size = { cols: 0, rows: 0 };
  let seenTimer = 0;
  let stopTimer = 0;
  let resizeTimer = 0;
  let resizedAt = 0;	// a shell redraws after a resize: not activity

  const title = h('h2', { class: 'mono' }, `Session ${shortId(id)}`);
  const meta = h('p', { class: 'meta', id: 'session-meta' }, describe(info));
  const status = h('p', { class: 'error', role: 'alert', hidden: true });
  const termBox = h('div', {
    class: 'term', id: 'terminal', role: 'region', 'aria-label': 'Terminal',
  });
  const moveTargets = h('div', { class: 'targets' });
  const moveLog = h('ol', {
    class: 'log', id: 'move-log', 'aria-live': 'polite',
  });
  const movePanel = h('div', { class: 'panel', id: 'move-panel', hidden: true },
    moveTargets, moveLog);
  const setupText = h('pre', { class: 'setup-text', id: 'setup-text' });
  const setupPanel = h('div', {
    class: 'panel', id: 'setup-panel', hidden: true,
  }, setupText);
  const moveToggle = h('button', {
    type: 'button', 'aria-expanded': 'false', 'aria-controls': 'move-panel',
    id: 'move-toggle',
  }, 'Move');
  const setupToggle = h('button', {
    type: 'button', 'aria-expanded': 'false', 'aria-controls': 'setup-panel',
    id: 'setup-toggle', hidden: true,
  }, 'Setup log');
  const stopButton = h('button', {
    type: 'button', class: 'danger', id: 'stop',
  }, 'Stop');
  const field = h('input', {
    type: 'text', id: 'input-text', name: 'text', enterkeyhint: 'send',
    autocomplete: 'off', autocapitalize: 'off', autocorrect: 'off',
    spellcheck: 'false', placeholder: 'Type a line for the agent',
    'aria-label': 'Text to send',
  });
  const inputBar = h('form', { class: 'inputbar', 'aria-label': 'Send text' },
    field, h('button', { type: 'submit', class: 'primary' }, 'Send'));
  const keys = h('div', {
    class: 'keys', role: 'toolbar', 'aria-label': 'Keys',
  });
  const el = h('div', { class: 'session' },
    h('div', { class: 'session-head' }, title, meta,
      h('div', { class: 'actions' }, moveToggle, setupToggle, stopButton)),
    status, movePanel, setupPanel, termBox, keys, inputBar);

  const term = new Terminal({
    fontSize: FONT_SIZE, fontFamily: FONT, scrollback: 10000,
    cursorBlink: false, allowProposedApi: false,
    theme: { background: '#0b0f14', foreground: '#e6edf3', cursor: '#7ee787' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  function type(data) {
    if (gone) return;
    if (!app.conn || !app.conn.input(id, data)) {
      say('Not connected to the relay: that input was not sent.');
    }
  }

  for (const [label, name, bytes] of KEYS) {
    const b = h('button', { type: 'button', class: 'key', 'aria-label': name },
      label);
    // keep the focus (and the phone keyboard) where it was
    b.addEventListener('mousedown', (ev) => ev.preventDefault());
    b.addEventListener('click', () => type(bytes(term)));
    keys.append(b);
  }

  inputBar.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (gone) return;
    if (app.conn && app.conn.input(id, `${field.value}\r`)) field.value = '';
    else say('Not connected to the relay: the line was not sent; try again.');
  });
  term.onData((data) => type(data));
  term.onBinary((data) => {
    type(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
  });

  function render() {
    meta.textContent = describe(info);
    setupToggle.hidden = !(info && info.kind === 'sandbox');
    if (setupToggle.hidden) toggle(setupToggle, setupPanel, false);
    stopButton.disabled = !info || info.state === 'exited' ||
      info.state === 'stopped';
    renderTargets();
  }

  function renderTargets() {
    const running = info &&
      (info.state === 'running' || info.state === 'parked');
    const names = [];

    if (info && info.kind !== 'sandbox') {
      names.push(['sandbox', 'Move to sandbox']);
    }
    for (const m of app.machines) {
      if (m.kind !== 'local' || !m.online || !info ||
          m.name === info.machine) continue;
      names.push([m.name, `Move to ${m.name}`]);
    }
    fill(moveTargets, names.length ? names.map(([to, text]) => h('button', {
      type: 'button', class: 'primary', 'data-to': to,
      disabled: moving || !running, onclick: () => move(to),
    }, text)) : h('p', { class: 'note' }, 'No other machine is online.'));
  }

  function toggle(button, panel, open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  }

  function logLine(text, cls) {
    moveLog.append(h('li', { class: cls || '' }, text));
    movePanel.scrollTop = movePanel.scrollHeight;
  }

  async function move(to) {
    moving = true;
    renderTargets();
    fill(moveLog);
    logLine(`Moving to ${to}…`);
    try {
      const done = await app.conn.request('session.move', { to }, {
        session: id, timeout: 0,
        progress: (m) => {
          if (m.type !== 'move.step') return true;
          const lines = String(m.body.detail || '').split('\n')
            .filter((l) => l !== '');
          if (!lines.length) lines.push('');
          for (const l of lines) logLine(`${m.body.step}: ${l}`, 'step');
          return false;
        },
      });
      const b = done.body;
      logLine(`Moved to ${b.machine} (${b.kind}), worktree ${b.worktree}`,
        'done');
      if (info) Object.assign(info, { machine: b.machine, kind: b.kind,
        worktree: b.worktree, state: 'running' });
      size = { cols: 0, rows: 0 };
      resize();
      if (b.kind === 'sandbox') loadSetup();
    } catch (e) {
      logLine(`Move failed: ${e.message}`, 'error');
    } finally {
      moving = false;
      render();
      app.refresh();
    }
  }

  async function loadSetup() {
    if (!info) return;
    setupText.textContent = 'Loading…';
    try {
      const r = await app.conn.request('setup.get',
        { machine: info.machine_id || info.machine });
      const text = r.body.text || '(the setup log is empty)';
      setupText.textContent = `state: ${r.body.state || '?'}\n${text}`;
    } catch (e) {
      setupText.textContent = e.message;
    }
  }

  moveToggle.addEventListener('click', () => {
    toggle(moveToggle, movePanel, movePanel.hidden);
  });
  setupToggle.addEventListener('click', () => {
    toggle(setupToggle, setupPanel, setupPanel.hidden);
    if (!setupPanel.hidden) loadSetup();
  });
  stopButton.addEventListener('click', async () => {
    if (!stopTimer) {
      stopButton.textContent = 'Tap again to stop';
      stopButton.classList.add('armed');
      stopTimer = setTimeout(disarm, STOP_ARM_MS);
      return;
    }
    disarm();
    stopButton.disabled = true;
    try {
      await app.conn.request('session.stop', {},
        { session: id, timeout: 60000 });
      toast(`Session ${shortId(id)} stopped.`);
    } catch (e) {
      say(e.message);
    }
    app.refresh();
  });

  function disarm() {
    clearTimeout(stopTimer);
    stopTimer = 0;
    stopButton.textContent = 'Stop';
    stopButton.classList.remove('armed');
  }

  // Fits the terminal to its box and tells the session the new size.
  function resize() {
    if (gone || !termBox.isConnected) return;
    try {
      fit.fit();
    } catch {
      return;	// not laid out yet
    }
    if (term.cols === size.cols && term.rows === size.rows) return;
    if (!app.conn || !app.conn.up || liveFrom === null) return;
    size = { cols: term.cols, rows: term.rows };
    resizedAt = Date.now();
    app.conn.request('session.resize', size, { session: id })
      .catch(() => { size = { cols: 0, rows: 0 }; });
  }
  const observer = new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resize, 100);
  });

  function notFound() {
    gone = true;
    dispose();
    fill(el, h('div', { class: 'card', id: 'not-found' },
      h('h2', {}, 'Session not found'),
      h('p', {}, `There is no session ${shortId(id)} for you.`),
      h('a', { href: '#/', class: 'button' }, 'Back to your sessions')));
  }

  async function attach() {
    if (gone || !app.conn || !app.conn.up) return;
    try {
      const r = await app.conn.request('session.attach',
        { from: lastSeq.toString() }, { session: id });
      liveFrom = BigInt(r.body.seq || '0');
      if (r.body.session && typeof r.body.session === 'object') {
        info = r.body.session;
      }
      say('');
      render();
      size = { cols: 0, rows: 0 };
      resize();
    } catch (e) {
      if (e.code === 'not_found') notFound();
      else say(e.message);
    }
  }

  function output(frame) {
    if (gone || frame.kind !== KIND_OUTPUT || frame.session !== id) return;
    if (frame.seq <= lastSeq) return;	// already on screen
    term.write(frame.payload);
    lastSeq = frame.seq;
    if (liveFrom !== null && frame.seq > liveFrom &&
        Date.now() - resizedAt > 300) {
      activity(info || { id });
    }
    if (!seenTimer) seenTimer = setTimeout(flushSeen, 1000);
  }

  function flushSeen() {
    seenTimer = 0;
    seenSet(id, lastSeq);
  }

  function message(msg) {
    if (gone || msg.session !== id) return;
    if (msg.type === 'session') {
      info = msg.body;
      render();
    } else if (msg.type === 'session.exited' && info) {
      info.state = 'exited';
      info.exit_status = msg.body.status;
      render();
    } else if (msg.type === 'error') {
      say(sentence(msg.body.message));	// refused input, for one
    }
  }

  function update() {
    if (gone) return;
    const fresh = app.sessions.find((s) => s.id === id);
    if (fresh && !moving) info = fresh;
    render();
  }

  function mounted() {
    term.open(termBox);
    observer.observe(termBox);
    try {
      fit.fit();
    } catch {
      // laid out on the first resize
    }
    render();
    attach();
  }

  function close() {
    gone = true;
    observer.disconnect();
    clearTimeout(seenTimer);
    clearTimeout(stopTimer);
    clearTimeout(resizeTimer);
    if (lastSeq > 0n) seenSet(id, lastSeq);
    if (app.conn && app.conn.up) {
      app.conn.request('session.detach', {}, { session: id }).catch(() => {});
    }
    dispose();
  }

  function dispose() {
    if (disposed) return;
    disposed = true;
    term.dispose();
    if (window.__batonTest === hook) delete window.__batonTest;
  }

  // For the end-to-end test: the terminal's whole buffer as text (wrapped
  // rows joined), which holds what the page already shows, and a way to
  // lose the connection.
  const hook = {
    session: id,
    drop() {
      if (app.conn) app.conn.drop();
    },
    text() {
      if (gone) return '';
      const b = term.buffer.active;
      const lines = [];
      for (let i = 0; i < b.length; i++) {
        const line = b.getLine(i);
        if (!line) continue;
        const s = line.translateToString(true);
        if (line.isWrapped && lines.length) lines[lines.length - 1] += s;
        else lines.push(s);
      }
      return lines.join('\n');
    },
  };
  window.__batonTest = hook;

  return {
    el, sessionId: id, mounted, close, update, message, output,
    online: attach,
  };
}
