// conn.js: the app's one WebSocket to the relay. The sign-in cookie
// authenticates it, so hello carries no token. Requests get an envelope
// id and a promise; replies, progress and errors with that id settle it.
// A lost connection is opened again with a growing delay.

import { sentence } from './dom.js';
import { CHUNK, decodeFrame, encodeInput, inputId } from './frames.js';

const BACKOFF_MS = [300, 1000, 2000, 4000, 8000, 15000];
const REQUEST_MS = 30000;
const encoder = new TextEncoder();

// A refusal from the relay: message is its sentence, code its error code.
export class RelayError extends Error {
  constructor(code, message) {
    super(sentence(message));
    this.code = code;
  }
}

export class Conn {
  // handlers: welcome(body), signedOut(sentence), down(sentence),
  // message(msg) for anything no request waits for, output(frame).
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.up = false;
    this.stopped = true;
    this.nextId = 0;
    this.pending = new Map();
    this.failures = 0;
    this.timer = 0;
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.open();
  }

  // Closes for good (sign-out, or the cookie was refused).
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.lost('signed out');
  }

  // Closes the socket as a network failure would: it opens again.
  drop() {
    if (this.ws) this.ws.close(4000, 'dropped');
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/`, 'baton.v1');

    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: 'hello', body: { version: 1, role: 'client' },
      }));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      if (typeof ev.data === 'string') this.text(ev.data);
      else this.binary(ev.data);
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.lost('the connection to the relay was lost');
      if (!this.stopped) this.retry();
    };
  }

  retry() {
    const ms = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];

    this.failures++;
    this.h.down(`Reconnecting to the relay in ${Math.round(ms / 1000)} s…`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), ms);
  }

  // Fails every request still waiting.
  lost(why) {
    this.up = false;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new RelayError('offline', `The request was cut off: ${why}.`));
    }
    this.pending.clear();
  }

  text(data) {
    let msg;

    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    msg.body = msg.body && typeof msg.body === 'object' ? msg.body : {};
    msg.id = typeof msg.id === 'string' ? msg.id : '';
    if (!this.up) {
      this.handshake(msg);
      return;
    }
    const p = msg.id ? this.pending.get(msg.id) : null;
    if (!p) {
      this.h.message(msg);
      return;
    }
    if (msg.type === 'error') {
      this.settle(msg.id);
      p.reject(new RelayError(msg.body.code || 'error',
        msg.body.message || 'The relay refused the request.'));
    } else if (p.progress && p.progress(msg) === false) {
      // a progress event: the request goes on
    } else {
      this.settle(msg.id);
      p.resolve(msg);
    }
  }

  handshake(msg) {
    if (msg.type === 'welcome') {
      this.up = true;
      this.failures = 0;
      this.h.welcome(msg.body);
      return;
    }
    if (msg.type !== 'error') return;
    const code = msg.body.code;
    if (code === 'unauthorized') {
      this.stopped = true;
      this.ws.close(1000);
      this.ws = null;
      this.h.signedOut('');
    } else {
      this.h.down(sentence(msg.body.message) ||
        'The relay refused the connection.');
    }
  }

  binary(buf) {
    const frame = decodeFrame(buf);
    if (frame) this.h.output(frame);
  }

  settle(id) {
    const p = this.pending.get(id);
    if (p) clearTimeout(p.timer);
    this.pending.delete(id);
  }

  // Sends a request; resolves with the reply. opts.session is the
  // envelope's session; opts.progress(msg) returns false for a message
  // that does not end the request; opts.timeout in ms, 0 for none.
  request(type, body, opts = {}) {
    if (!this.up) {
      return Promise.reject(new RelayError('offline',
        'Not connected to the relay; try again in a moment.'));
    }
    const id = `w${++this.nextId}`;
    const env = { type, id, body: body || {} };
    if (opts.session) env.session = opts.session;
    return new Promise((resolve, reject) => {
      const ms = opts.timeout === undefined ? REQUEST_MS : opts.timeout;
      const p = { resolve, reject, progress: opts.progress, timer: 0 };
      if (ms > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new RelayError('timeout',
            `The relay did not answer ${type} in ${ms / 1000} s.`));
        }, ms);
      }
      this.pending.set(id, p);
      this.ws.send(JSON.stringify(env));
    });
  }

  // Types text (a string) into a session, in chunks of at most 64 KiB.
  input(sessionId, data) {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;

    if (!this.up || bytes.length === 0) return false;
    for (let off = 0; off < bytes.length; off += CHUNK) {
      const part = bytes.subarray(off, Math.min(off + CHUNK, bytes.length));
      this.ws.send(encodeInput(sessionId, inputId(), part));
    }
    return true;
  }
}
