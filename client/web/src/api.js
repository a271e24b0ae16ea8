// api.js: sign-in and sign-out over HTTP. The relay answers with an
// HttpOnly cookie that page scripts cannot read; the app never keeps the
// token or the code itself.

import { sentence } from './dom.js';

// Posts JSON to one of the relay's /api paths; resolves with the parsed
// answer, rejects with an Error whose message is a sentence for the user.
async function post(path, body) {
  let res;

  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new Error('The relay cannot be reached; check the connection.');
  }
  let answer = {};
  try {
    answer = await res.json();
  } catch {
    // an answer that is not JSON: the status says enough
  }
  if (!res.ok) {
    throw new Error(answer && typeof answer.error === 'string' ?
      sentence(answer.error) : `The relay refused (HTTP ${res.status}).`);
  }
  return answer;
}

// Signs in with {token} or {code}; resolves with {user, scope}.
export function login(credential) {
  return post('/api/login', credential);
}

// Signs out: the relay clears the cookie and revokes what it stood for.
export function logout() {
  return post('/api/logout', {});
}
