// frames.js: baton.v1 binary frames (PROTOCOL.md section 3): a 32-byte
// big-endian header (version, kind, flags, epoch, the session's UUID as 16
// raw bytes, seq) and up to 64 KiB of payload.

export const KIND_OUTPUT = 1;
export const KIND_INPUT = 2;
export const HEADER = 32;
export const CHUNK = 65536;

const UUID_RE =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Returns the 16 bytes of a UUID string.
export function uuidBytes(id) {
  const hex = id.toLowerCase();
  if (!UUID_RE.test(hex)) throw new Error(`not a session id: ${id}`);
  const digits = hex.replace(/-/g, '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    out[i] = parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

// Returns the lowercase UUID string of 16 bytes.
export function uuidString(bytes) {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-` +
    `${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Returns a random non-zero 64-bit input id.
export function inputId() {
  const words = new BigUint64Array(1);
  while (words[0] === 0n) crypto.getRandomValues(words);
  return words[0];
}

// Returns one input frame: kind 2, epoch 0, seq = the input id.
export function encodeInput(sessionId, id, payload) {
  if (payload.length > CHUNK) throw new Error('input chunk too large');
  const buf = new ArrayBuffer(HEADER + payload.length);
  const view = new DataView(buf);
  view.setUint8(0, 1);
  view.setUint8(1, KIND_INPUT);
  view.setUint16(2, 0);
  view.setUint32(4, 0);
  new Uint8Array(buf, 8, 16).set(uuidBytes(sessionId));
  view.setBigUint64(24, id);
  new Uint8Array(buf, HEADER).set(payload);
  return buf;
}

// Returns {kind, flags, session, seq (BigInt), payload} or null for a
// frame that is too short or of another version.
export function decodeFrame(buf) {
  if (buf.byteLength < HEADER) return null;
  const view = new DataView(buf);
  if (view.getUint8(0) !== 1) return null;
  return {
    kind: view.getUint8(1),
    flags: view.getUint16(2),
    session: uuidString(new Uint8Array(buf, 8, 16)),
    seq: view.getBigUint64(24),
    payload: new Uint8Array(buf, HEADER),
  };
}
