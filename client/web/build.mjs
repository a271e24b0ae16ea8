// build.mjs --out DIR: builds Baton's web app into DIR, a flat folder that
// `baton-relay serve --web DIR` serves: app.js (src/main.js and what it
// imports, xterm.js included, bundled and minified), app.css (xterm's
// stylesheet, then src/app.css), the files of static/, and a .gz beside
// each html, js and css file. Prints what the first page load fetches.
// Runs on Node 18.
import { build, transform } from 'esbuild';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const GZIP = /\.(html|js|css)$/;
const MARKER = '.baton-web';
// What a browser fetches to show the sign-in screen, in order.
const FIRST_LOAD = ['index.html', 'app.css', 'app.js', 'icon.svg',
  'manifest.webmanifest'];

function usage(why) {
  process.stderr.write(`build.mjs: ${why}\nusage: node build.mjs --out DIR\n`);
  process.exit(2);
}

function parseArgs(argv) {
  let out = null;

  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) out = argv[++i];
    else if (argv[i].startsWith('--out=')) out = argv[i].slice(6);
    else usage(`unknown argument ${argv[i]}`);
  }
  if (!out) usage('--out DIR is required');
  return resolve(out);
}

async function bundleJs() {
  const result = await build({
    entryPoints: [join(here, 'src/main.js')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['es2020', 'chrome100', 'safari15', 'firefox100'],
    legalComments: 'eof',
    write: false,
    logLevel: 'warning',
  });
  return Buffer.from(result.outputFiles[0].contents);
}

async function bundleCss() {
  const xterm = await readFile(
    join(here, 'node_modules/@xterm/xterm/css/xterm.css'), 'utf8');
  const app = await readFile(join(here, 'src/app.css'), 'utf8');
  const result = await transform(`${xterm}\n${app}`, {
    loader: 'css', minify: true, target: ['chrome100', 'safari15'],
  });
  return Buffer.from(result.code);
}

function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

async function main() {
  const out = parseArgs(process.argv.slice(2));
  const files = new Map();

  files.set('app.js', await bundleJs());
  files.set('app.css', await bundleCss());
  for (const name of await readdir(join(here, 'static'))) {
    if (name.startsWith('.')) continue;
    files.set(name, await readFile(join(here, 'static', name)));
  }
  for (const [name, data] of [...files]) {
    if (GZIP.test(name)) files.set(`${name}.gz`, gzipSync(data, { level: 9 }));
  }

  // A folder this script made (it has the marker) loses files that are no
  // longer built; any other folder keeps what it had.
  await mkdir(out, { recursive: true });
  const old = await readdir(out);
  if (old.includes(MARKER)) {
    for (const name of old) {
      if (name !== MARKER && !files.has(name)) {
        await rm(join(out, name), { recursive: true });
      }
    }
  }
  await writeFile(join(out, MARKER), 'built by client/web/build.mjs\n');
  for (const [name, data] of files) await writeFile(join(out, name), data);

  let raw = 0;
  let wire = 0;
  for (const name of FIRST_LOAD) {
    const data = files.get(name);
    const gz = files.get(`${name}.gz`);
    raw += data.length;
    wire += gz ? gz.length : data.length;
    const zipped = gz ? ` ${kib(gz.length).padStart(10)} gzip` : '';
    process.stdout.write(
      `  ${name.padEnd(22)} ${kib(data.length).padStart(10)}${zipped}\n`);
  }
  process.stdout.write(`web app in ${out}: first load ${kib(raw)} ` +
    `(${raw} bytes), ${kib(wire)} (${wire} bytes) with gzip\n`);
}

main().catch((e) => {
  process.stderr.write(`build.mjs: ${e.message}\n`);
  process.exit(1);
});
