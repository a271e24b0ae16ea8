// dom.js: a small element builder, so views are written as trees of calls
// rather than HTML strings (nothing from the relay is ever parsed as HTML).

// h('button', {class: 'x', onclick: f}, 'text', child): a new element.
// Attributes starting with "on" become listeners; false and null are
// left out; children may be strings, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);

  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Replaces everything inside el with the children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// The first 8 characters of a session id, as the CLI shows them.
export function shortId(id) {
  return String(id || '').slice(0, 8);
}

// A message from the relay as a sentence: a capital first, a full stop.
export function sentence(text) {
  const s = String(text || '').trim();
  if (!s) return s;
  const first = s[0].toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}
