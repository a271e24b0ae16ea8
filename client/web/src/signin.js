// signin.js: the sign-in screen. The token goes to the relay once, in the
// body of POST /api/login, and is dropped from the page right away: the
// field is emptied before the answer comes, and nothing is stored.

import { h } from './dom.js';

// why: a sentence to show (or ''); signIn(credential) rejects with one.
export function signinView(why, signIn) {
  const field = h('input', {
    id: 'token', type: 'password', name: 'token', autocomplete: 'off',
    autocapitalize: 'off', spellcheck: 'false', required: true,
    placeholder: 'Client token', 'aria-describedby': 'signin-error',
  });
  const button = h('button', { type: 'submit', class: 'primary' },
    'Sign in');
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' },
    why || '');
  const form = h('form', { class: 'signin', 'aria-label': 'Sign in' },
    h('h2', {}, 'Sign in'),
    h('label', { for: 'token' }, 'Token'),
    field,
    button,
    error,
    h('p', { class: 'note' }, 'or scan the QR code from ',
      h('code', {}, 'baton login --qr'), ' with your phone.'));

  error.hidden = !why;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = field.value.trim();
    field.value = '';
    if (!token) return;
    button.disabled = true;
    error.hidden = true;
    try {
      await signIn({ token });
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
      field.focus();
    }
  });
  return { el: form, focus: () => field.focus() };
}
