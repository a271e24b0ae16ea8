// home.js: the home screen: the user's machines, sessions (with a dot for
// output not seen yet) and a form to start a session on a machine.

import { fill, h, shortId } from './dom.js';
import { unseen } from './seen.js';
import { termSizeGuess } from './session.js';

const AGENTS = ['shell', 'claude', 'codex'];

function machineItem(m) {
  const online = m.online === true;
  const state = m.kind === 'sandbox' && m.state ? m.state : '';

  return h('li', { class: 'item' },
    h('div', { class: 'row' },
      h('span', {
        class: `dot ${online ? 'on' : 'off'}`, 'aria-hidden': 'true',
      }),
      h('strong', {}, m.name || shortId(m.id)),
      h('span', { class: `badge ${m.kind}` }, m.kind || '?')),
    h('div', { class: 'meta' }, online ? 'online' : 'offline',
      state ? ` · ${state}` : ''));
}

function baseName(path) {
  const parts = String(path || '').split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '';
}

function sessionItem(s) {
  const fresh = unseen(s);
  const exited = typeof s.exit_status === 'number' && s.exit_status >= 0;
  const state = exited ? `exited ${s.exit_status}` : s.state;

  return h('li', { class: `item session${exited ? ' done' : ''}` },
    h('a', {
      href: `#/s/${s.id}`, class: 'row link-row',
      'aria-label': `Session ${shortId(s.id)}, ${s.agent}, ${state}` +
        (fresh ? ', new output' : ''),
    },
    h('span', {
      class: `dot ${fresh ? 'new' : 'none'}`,
      title: fresh ? 'new output' : '', 'aria-hidden': 'true',
    }),
    h('strong', { class: 'mono' }, shortId(s.id)),
    h('span', {}, s.agent || ''),
    h('span', { class: 'state' }, state || '')),
    h('div', { class: 'meta', title: s.worktree || '' },
      baseName(s.worktree) || '(no folder yet)', ' · ',
      s.machine || '?', ' ', h('span', { class: `badge ${s.kind}` }, s.kind)));
}

// The form to start a session: machine, folder, agent.
function startForm(app) {
  const machine = h('select', {
    id: 'new-machine', name: 'machine', required: true,
  });
  const dir = h('input', {
    id: 'new-dir', name: 'dir', type: 'text', required: true,
    autocapitalize: 'off', autocomplete: 'off', spellcheck: 'false',
    placeholder: '/home/you/project', enterkeyhint: 'go',
  });
  const agent = h('select', { id: 'new-agent', name: 'agent' },
    AGENTS.map((a) => h('option', { value: a }, a)));
  const button = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card', 'aria-label': 'New session' },
    h('h2', {}, 'New session'),
    h('label', { for: 'new-machine' }, 'Machine'), machine,
    h('label', { for: 'new-dir' }, 'Folder (a git repository)'), dir,
    h('label', { for: 'new-agent' }, 'Agent'), agent,
    button, error);

  // Redraws the choice of online machines only when it changed, so an
  // open picker stays open.
  let shown = null;
  function update() {
    const chosen = machine.value;
    const names = app.machines
      .filter((m) => m.online && m.kind === 'local')
      .map((m) => m.name);
    if (shown === names.join('\n')) return;
    shown = names.join('\n');
    fill(machine, names.length ?
      names.map((n) => h('option', { value: n }, n)) :
      h('option', { value: '' }, 'no machine is online'));
    if (names.includes(chosen)) machine.value = chosen;
    button.disabled = names.length === 0;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const size = termSizeGuess();
    button.disabled = true;
    error.hidden = true;
    try {
      const reply = await app.conn.request('session.start', {
        machine: machine.value, dir: dir.value.trim(), agent: agent.value,
        cols: size.cols, rows: size.rows,
      }, { timeout: 60000 });
      const id = reply.session || (reply.body && reply.body.id);
      app.refresh();
      app.go(`#/s/${id}`);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      button.disabled = !machine.value;
    }
  });
  update();
  return { el: form, update };
}

export function homeView(app) {
  const machines = h('ul', {
    class: 'list', id: 'machines', 'aria-label': 'Machines',
  });
  const sessions = h('ul', {
    class: 'list', id: 'sessions', 'aria-label': 'Sessions',
  });
  const form = startForm(app);
  const el = h('div', { class: 'home' },
    h('section', {}, h('h2', {}, 'Machines'), machines),
    h('section', {}, h('h2', {}, 'Sessions'), sessions),
    form.el);

  function update() {
    fill(machines, app.machines.length ? app.machines.map(machineItem) :
      h('li', { class: 'empty' },
        'No machines yet: pair a laptop with baton-local pair.'));
    const running = app.sessions.filter((s) => !(s.exit_status >= 0));
    const ended = app.sessions.filter((s) => s.exit_status >= 0);
    fill(sessions, app.sessions.length ?
      running.concat(ended).map(sessionItem) :
      h('li', { class: 'empty' }, 'No sessions yet.'));
    form.update();
  }

  update();
  return { el, update };
}
