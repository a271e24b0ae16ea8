#!/bin/sh
# make.sh SRC OUT NODE NPM: builds the web app from SRC (client/web) into OUT,
# running `npm ci` first when node_modules is older than the lockfile.
# When the packages cannot be installed (no npm registry in reach), it
# says why in OUT.unavailable and builds nothing, without failing the
# build: the relay then serves no app and the web test skips, saying why.
set -u
src=$1
out=$2
node=$3
npm=$4
stamp=$src/node_modules/.baton-npm-ci.stamp
rm -f "$out.unavailable"
if [ ! -f "$stamp" ] || [ "$src/package-lock.json" -nt "$stamp" ]; then
  if ! (cd "$src" && "$npm" ci --no-audit --no-fund) >"$out.npm.log" 2>&1; then
    {
      echo "the web app was not built: npm ci failed in $src"
      echo "(is the npm registry in reach?). The end of its output:"
      tail -n 5 "$out.npm.log"
    } >"$out.unavailable"
    rm -rf "$out"
    echo "warning: $(head -n 1 "$out.unavailable"); see $out.npm.log" >&2
    exit 0
  fi
  touch "$stamp"
fi
exec "$node" "$src/build.mjs" --out "$out"
