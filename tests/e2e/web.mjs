// web.mjs: the web app end to end, in headless Chromium at phone size,
// against a relay and a laptop daemon on 127.0.0.1 that
// tests/integration/test-web.sh started. Each step fails with a sentence
// saying what the page did not do. Runs on Node 18.
//
// Environment: BASE (http://127.0.0.1:PORT), TOKEN_A (a steer token of
// alice), TOKEN_B (bob's), REPO (a git repository on the laptop), SCREENS
// (where screenshots go), LOGIN_URL (from `baton login --qr`, or empty),
// PAIR_URL (the address `baton-local pair` shows for laptop2, or empty),
// BATON_SRC (the source tree), CHROMIUM (the browser), CLIENT_BIN and
// RELAY_URL (the `baton` client, to type while the page is offline).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = process.env;
const require = createRequire(join(env.BATON_SRC, 'client/web/package.json'));
const { chromium } = require('playwright-core');

const BASE = env.BASE;
const WAIT = 20000;	// one step's limit
const MOVE_WAIT = 60000;	// a move, with a sandbox to launch
const TOTAL = 150000;	// the whole run

const started = Date.now();
function log(text) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stderr.write(`[web ${s}s] ${text}\n`);
}

class Failure extends Error {}
function fail(text) {
  throw new Failure(text);
}
function check(ok, text) {
  if (!ok) fail(text);
}

// Waits until fn(arg) is true in the page; fails saying what.
async function until(page, what, fn, arg, timeout = WAIT) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    const shown = await page.evaluate(() => {
      const hook = window.__batonTest;
      const view = document.getElementById('view');
      return `${view ? view.innerText.slice(0, 600) : ''}` +
        (hook ? `\n--- terminal:\n${hook.text().slice(-1500)}` : '');
    }).catch(() => '(page gone)');
    fail(`timed out after ${timeout / 1000} s waiting for ${what}; ` +
      `the page shows:\n${shown}`);
  }
}

function marker() {
  return Math.random().toString(16).slice(2, 10);
}

// The terminal's whole buffer, through the app's test hook.
function terminalText(page) {
  return page.evaluate(() =>
    (window.__batonTest ? window.__batonTest.text() : ''));
}

function count(text, word) {
  return text.split(word).length - 1;
}

async function newPhone(browser) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
    userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 ' +
      '(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36',
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') log(`console: ${m.text()}`);
  });
  return { context, page };
}

async function shot(page, name) {
  const path = join(env.SCREENS, `${name}.png`);
  await page.screenshot({ path });
  log(`screenshot ${path}`);
}

async function signInWithToken(page, token) {
  await until(page, 'the sign-in screen',
    () => !!document.querySelector('form.signin #token'));
  await page.fill('#token', token);
  await page.click('form.signin button[type=submit]');
  await until(page, 'the home screen after signing in',
    () => !!document.getElementById('machines'));
}

// Types a line in the input bar and sends it.
async function sendLine(page, text) {
  await page.fill('#input-text', text);
  await page.click('form.inputbar button[type=submit]');
}

async function echoMarker(page, m) {
  await sendLine(page, `echo hel''lo-${m}`);
  await until(page, `hello-${m} in the terminal`,
    (w) => window.__batonTest && window.__batonTest.text().includes(w),
    `hello-${m}`);
}

async function move(page, to, label) {
  if (await page.getAttribute('#move-toggle', 'aria-expanded') !== 'true') {
    await page.click('#move-toggle');
  }
  const button = page.locator(`#move-panel button[data-to="${to}"]`);
  await until(page, `a "${label}" button`, (t) => {
    const b = document.querySelector(`#move-panel button[data-to="${t}"]`);
    return b && !b.disabled;
  }, to);
  await button.click();
  await until(page, `the first step of the move to ${to}`,
    () => !!document.querySelector('#move-log li.step'), undefined, MOVE_WAIT);
  return until(page, `the end of the move to ${to}`,
    () => !!document.querySelector('#move-log li.done, #move-log li.error'),
    undefined, MOVE_WAIT);
}

// a: signs in with a typed token; nothing the page can read holds it.
async function signIn(browser) {
  const { context, page } = await newPhone(browser);
  let firstLoad = 0;
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.loadingFinished', (e) => {
    firstLoad += e.encodedDataLength;
  });

  const res = await page.goto(`${BASE}/`, { waitUntil: 'load' });
  const csp = res.headers()['content-security-policy'] || '';
  check(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp) &&
    !/unsafe-eval/.test(csp),
    `/ has no strict content security policy: "${csp}"`);
  const js = await context.request.get(`${BASE}/app.js`);
  check(js.ok(), `app.js: HTTP ${js.status()}`);
  check((js.headers()['content-security-policy'] || '') === csp,
    'app.js lacks the content security policy of /');
  check(js.headers()['x-content-type-options'] === 'nosniff',
    'app.js lacks X-Content-Type-Options: nosniff');
  await until(page, 'the sign-in screen',
    () => !!document.querySelector('form.signin #token'));
  await page.waitForTimeout(300);
  await cdp.detach();
  log(`first load: ${firstLoad} bytes`);
  await shot(page, 'sign-in');

  await page.fill('#token', 'not-a-token');
  await page.click('form.signin button[type=submit]');
  await until(page, 'a sentence refusing a wrong token',
    () => /token/i.test(document.getElementById('signin-error').textContent));
  log(`a wrong token: "${await page.textContent('#signin-error')}"`);

  await signInWithToken(page, env.TOKEN_A);
  await until(page, 'the laptop in the machines list',
    () => /laptop/.test(document.getElementById('machines').innerText) &&
      /online/.test(document.getElementById('machines').innerText));
  const leaks = await page.evaluate((t) => ({
    cookie: document.cookie.includes(t),
    local: JSON.stringify(Object.assign({}, localStorage)).includes(t),
    session: JSON.stringify(Object.assign({}, sessionStorage)).includes(t),
    field: (document.querySelector('#token') || {}).value === t,
  }), env.TOKEN_A);
  check(!leaks.cookie, 'document.cookie holds the token');
  check(!leaks.local, 'localStorage holds the token');
  check(!leaks.session, 'sessionStorage holds the token');
  const cookies = await context.cookies();
  check(cookies.length > 0, 'signing in set no cookie');
  for (const c of cookies) {
    check(c.httpOnly, `cookie ${c.name} is readable by page scripts`);
    check(c.sameSite === 'Strict', `cookie ${c.name} is not SameSite=Strict`);
    check(!c.value.includes(env.TOKEN_A), `cookie ${c.name} is the token`);
  }
  check(!(await page.evaluate(() => document.cookie)),
    'document.cookie is not empty');
  log('a: signed in with a token; the page cannot read it anywhere');
  return { context, page, firstLoad };
}

// b: a session started from the page, and a line typed into it.
async function startSession(page) {
  await page.fill('#new-dir', env.REPO);
  await page.selectOption('#new-machine', 'laptop');
  await page.selectOption('#new-agent', 'shell');
  await page.click('form[aria-label="New session"] button[type=submit]');
  await until(page, 'the session page', () => /^#\/s\//.test(location.hash) &&
    !!document.querySelector('#terminal .xterm'));
  const sid = await page.evaluate(() => location.hash.slice(4));
  const m = marker();
  await echoMarker(page, m);
  log(`b: session ${sid} started from the page; hello-${m} came back`);
  return { sid, m1: m };
}

// c: a reload replays the history once.
async function reload(page, m1) {
  await page.reload({ waitUntil: 'load' });
  await until(page, 'the history after a reload',
    (w) => window.__batonTest && window.__batonTest.text().includes(w),
    `hello-${m1}`);
  await page.waitForTimeout(1000);	// would any duplicate come late
  const n = count(await terminalText(page), `hello-${m1}`);
  check(n === 1,
    `after a reload the terminal shows hello-${m1} ${n} times, not once`);
  log('c: a reload shows the history once');
}

// d: to the sandbox and back from the page; one continuous transcript.
async function moves(page, m1) {
  await until(page, 'the session running',
    () => /running/.test(document.getElementById('session-meta').textContent));
  await move(page, 'sandbox', 'Move to sandbox');
  await shot(page, 'move');
  const done = await page.textContent('#move-log li:last-child');
  check(/Moved to .* \(sandbox\)/.test(done),
    `the move to the sandbox ended: ${done}`);
  const steps = await page.$$eval('#move-log li.step',
    (l) => l.map((x) => x.textContent));
  check(steps.some((s) => s.startsWith('fenced')),
    `the move showed no fenced step: ${steps.join(' | ')}`);
  log(`d: moved to the sandbox: ${steps.length} steps, then "${done}"`);
  await until(page, 'the session page to say it runs on the sandbox',
    () => /sandbox/.test(document.getElementById('session-meta').textContent));
  const m2 = marker();
  await echoMarker(page, m2);
  await page.click('#setup-toggle');
  await until(page, 'the setup log', () =>
    !/Loading/.test(document.getElementById('setup-text').textContent));
  const setup = await page.textContent('#setup-text');
  log(`the sandbox's setup log: ${setup.split('\n')[0]}`);
  await page.click('#setup-toggle');

  await move(page, 'laptop', 'Move to laptop');
  const back = await page.textContent('#move-log li:last-child');
  check(/Moved to laptop \(local\)/.test(back), `the move back ended: ${back}`);
  const m3 = marker();
  await echoMarker(page, m3);
  await page.click('#move-toggle');	// closed: the terminal gets the room
  await page.waitForTimeout(400);	// the terminal fits the new room
  await shot(page, 'session');

  const text = await terminalText(page);
  const at = [m1, m2, m3].map((m) => {
    const n = count(text, `hello-${m}`);
    check(n === 1, `the terminal shows hello-${m} ${n} times, not once`);
    return text.indexOf(`hello-${m}`);
  });
  check(at[0] < at[1] && at[1] < at[2],
    'the three answers are not in the order they were typed');
  log('d: moved to the sandbox and back; each answer once, in order');
  return [m1, m2, m3];
}

// The page loses its connection while the session talks; it connects
// again and catches up from the last seq it showed, without duplicates.
async function offline(context, page, sid, earlier) {
  const m = marker();
  await context.setOffline(true);
  await page.evaluate(() => window.__batonTest.drop());
  await until(page, 'the page to notice it is offline',
    () => !document.getElementById('banner').hidden);
  execFileSync(env.CLIENT_BIN, ['send', sid, `echo hel''lo-${m}`], {
    env: {
      ...process.env, BATON_RELAY: env.RELAY_URL, BATON_TOKEN: env.TOKEN_A,
    },
    timeout: WAIT,
  });
  await page.waitForTimeout(500);
  check(!(await terminalText(page)).includes(`hello-${m}`),
    'the page showed output while offline');
  await context.setOffline(false);
  await until(page, `hello-${m} after reconnecting`,
    (w) => window.__batonTest && window.__batonTest.text().includes(w),
    `hello-${m}`);
  await page.waitForTimeout(500);
  const text = await terminalText(page);
  for (const e of earlier.concat(m)) {
    const n = count(text, `hello-${e}`);
    check(n === 1,
      `after reconnecting the terminal shows hello-${e} ${n} times`);
  }
  log('the page reconnected and caught up once');

  // Output, then quiet: the page says the agent may be waiting. (Output
  // right after a resize is the agent redrawing, which does not count.)
  await page.waitForTimeout(500);
  await echoMarker(page, marker());
  await until(page, 'a notice that the session went quiet', () =>
    [...document.querySelectorAll('.toast')].some((t) =>
      /is quiet/.test(t.textContent)), undefined, 15000);
  log(`notice: "${await page.textContent('.toast')}"`);
}

// e: another user sees nothing of the first.
async function stranger(browser, sid) {
  const { context, page } = await newPhone(browser);
  await page.goto(`${BASE}/`);
  await signInWithToken(page, env.TOKEN_B);
  await until(page, 'the lists of the second user', () =>
    /No machines/.test(document.getElementById('machines').innerText) &&
    /No sessions/.test(document.getElementById('sessions').innerText));
  await page.waitForTimeout(3500);	// one more poll
  const lists = await page.evaluate(() => ({
    items: document.querySelectorAll('#machines li.item, #sessions li.item')
      .length,
    text: document.getElementById('machines').innerText +
      document.getElementById('sessions').innerText,
  }));
  check(lists.items === 0 && !lists.text.includes(sid.slice(0, 8)),
    `the second user sees the first's: ${lists.text}`);
  await page.goto(`${BASE}/#/s/${sid}`);
  await until(page, 'not found for the other user\'s session',
    () => !!document.getElementById('not-found'));
  const shown = await page.evaluate(() => ({
    hook: window.__batonTest ? window.__batonTest.text() : '',
    xterm: !!document.querySelector('.xterm'),
    text: document.getElementById('view').innerText,
  }));
  check(!shown.xterm && !shown.hook && !/hello-/.test(shown.text),
    'the other user\'s session page shows a terminal or output');
  log('e: the second user sees no machine or session of the first');
  await context.close();
}

// f: a one-time address from `baton login --qr` signs in once.
async function loginCode(browser, sid) {
  if (!env.LOGIN_URL) {
    log('f: skipped: `baton login --qr` is not there (no LOGIN_URL)');
    return;
  }
  const url = env.LOGIN_URL;
  check(url.startsWith(`${BASE}/#login=`), `baton login printed ${url}`);
  const one = await newPhone(browser);
  await one.page.goto(url);
  await until(one.page, 'the home screen from the sign-in code',
    () => !!document.getElementById('machines'));
  const left = await one.page.evaluate(() => location.href);
  check(!left.includes('login='), `the code stays in the address bar: ${left}`);
  // This browser has seen none of the session's output yet.
  await until(one.page, 'a new-output dot on the session', (id) => {
    const a = document.querySelector(`#sessions a[href="#/s/${id}"]`);
    return a && !!a.querySelector('.dot.new');
  }, sid);
  await one.context.close();
  const two = await newPhone(browser);
  await two.page.goto(url);
  await until(two.page, 'the spent code to be refused', () => {
    const e = document.getElementById('signin-error');
    return e && !e.hidden && e.textContent.length > 0;
  });
  const refusal = await two.page.textContent('#signin-error');
  log(`f: the code signed in once; again: "${refusal}"`);
  await two.context.close();
}

// g: sign-out ends the sign-in for good.
async function signOut(browser, context, page) {
  const cookies = await context.cookies();
  await page.click('#signout');
  await until(page, 'the sign-in screen after signing out',
    () => !!document.querySelector('form.signin #token'));
  const after = await newPhone(browser);
  await after.context.addCookies(cookies);
  await after.page.goto(`${BASE}/`);
  await until(after.page, 'the old cookie to be refused',
    () => !!document.querySelector('form.signin #token'));
  const answer = await after.page.evaluate(() => new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/`, 'baton.v1');
    const timer = setTimeout(() => resolve('no answer'), 5000);
    ws.onopen = () => ws.send(JSON.stringify({
      type: 'hello', body: { version: 1, role: 'client' },
    }));
    ws.onmessage = (ev) => { clearTimeout(timer); resolve(ev.data); };
    ws.onclose = () => { clearTimeout(timer); resolve('closed'); };
  }));
  check(!/"welcome"/.test(answer), 'the old cookie still opens a WebSocket');
  log(`g: signed out; the old cookie is refused: ${answer.slice(0, 90)}`);
  await after.context.close();
}

// The QR code `baton-local pair` shows opens /#pair=CODE: the signed-in
// page offers to approve that laptop, and approving makes it alice's.
async function pairing(page) {
  if (!env.PAIR_URL) {
    log('no pairing address: the pairing step is skipped');
    return;
  }
  await page.goto(env.PAIR_URL);
  await until(page, 'the offer to approve the waiting laptop',
    () => !!document.getElementById('pair-approve'));
  check(!/#pair=/.test(page.url()), `the code stayed in the address bar: ` +
    page.url());
  await page.tap('#pair-approve');
  await until(page, 'the pairing to be approved',
    () => /Paired laptop2/.test(document.getElementById('toasts').innerText));
  await until(page, 'the paired laptop among the machines',
    () => /laptop2/.test(document.getElementById('view').innerText));
  log('the pairing QR code\'s address approved the laptop from the page');
}

async function main() {
  mkdirSync(env.SCREENS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    // nothing but the relay on 127.0.0.1: no updates, sync or other
    // calls home, which this closed network would refuse anyway
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-domain-reliability'],
    headless: true,
  });
  try {
    const { context, page, firstLoad } = await signIn(browser);
    const { sid, m1 } = await startSession(page);
    await reload(page, m1);
    const more = await moves(page, m1);
    await offline(context, page, sid, more);
    await stranger(browser, sid);
    await loginCode(browser, sid);
    await pairing(page);
    await page.goto(`${BASE}/#/`);
    await until(page, 'the session in the home list', (id) =>
      document.getElementById('sessions').innerText.includes(id.slice(0, 8)),
      sid);
    const dot = await page.getAttribute(
      `#sessions a[href="#/s/${sid}"] .dot`, 'class');
    check(dot === 'dot none',
      `the session this browser has seen in full has a dot: ${dot}`);
    await shot(page, 'home');
    await signOut(browser, context, page);
    log(`screenshots in ${env.SCREENS}`);
    console.log(`first load: ${firstLoad} bytes`);
  } finally {
    await browser.close();
  }
}

const limit = setTimeout(() => {
  log(`FAIL: the web test took more than ${TOTAL / 1000} s`);
  process.exit(1);
}, TOTAL);
main().then(() => {
  clearTimeout(limit);
  log('all steps passed');
}, (e) => {
  log(`FAIL: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
});
