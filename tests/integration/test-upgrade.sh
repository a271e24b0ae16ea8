#!/usr/bin/env bash
# test-upgrade.sh: data made by the previous release is upgraded in place,
# after a copy, and data from a newer release is refused.
#  1. A relay data directory at schema version 4 (tests/fixtures/
#     relay-v4.sql, made by the baton-relay of that schema) on a disk too
#     full for a copy: the relay refuses to upgrade it, says why, and
#     leaves it at version 4 with no partial copy.
#  2. With room, the relay copies it to baton.db.v4-<time>.bak (logged),
#     upgrades it, and every token of the old release still does what it
#     did: steer, read only, machine, revoked.
#  3. A laptop's state folder from before state versions (machine.json and
#     sessions.json without "version") is upgraded after copies, and the
#     laptop starts paired, with no token.
#  4. A state file from a newer baton-local stops baton-local and
#     `baton-local pair`, with what to do, and is left alone.
#  5. A database from a newer baton-relay stops `serve` and `token create`,
#     with what to do, and is left alone.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

SQL=$BATON_BIN/tests/sqlite-exec
[ -x "$SQL" ] || fail "$SQL is not built (target sqlite-exec)"
FIXTURE=$here/../fixtures/relay-v4.sql

# The fixture's tokens (test values): alice's steer, read and machine
# tokens, and bob's revoked one.
STEER=bt_vgZDf5NDh4kVYVzexw883H83aqIZs2ynNtEW8FxVLg0
READ=bt_W-Ug4wDr-xxHlbh2Tn8xKv-l5zXOM720lQbHET_NqtA
MACHINE=bt_fANd7BRdygoAxESw7ea8_g3Gk7nHzbXn7xkqOrZSOIw
REVOKED=bt_8BxjW8vNolLKNbLh5p7MxEZ9B0mHpEieseaGfZQIXm0

DB=$T/relay/baton.db
version() { "$SQL" "$1" 'PRAGMA user_version'; }
copies() { find "$T/relay" -maxdepth 1 -name 'baton.db.v*' | wc -l; }

mkdir -p "$T/relay"
"$SQL" "$DB" - <"$FIXTURE"
[ "$(version "$DB")" = 4 ] || fail "the fixture is not at version 4"

# --- 1. no room for the copy: no upgrade
# (ulimit -f counts KiB: the 104 KiB database cannot be copied in 64, while
# SQLite's 32 KiB shared-memory file still fits; SIGXFSZ is ignored so that
# a write past the limit fails with an error instead of killing the relay.)
rc=0
(trap '' XFSZ; ulimit -f 64; exec "$RELAY_BIN" serve \
  --listen 127.0.0.1:0 --data "$T/relay" --sandbox-bin "$SANDBOX_BIN") \
  >"$T/full.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "the relay on a full disk exited $rc, not 1"
grep -q "cannot copy $DB to $DB.v4-.*\.bak before upgrading it from schema \
version 4 (.*); it is left as it was, not upgraded: make room" \
  "$T/full.log" || fail "no clear refusal on a full disk: $(cat "$T/full.log")"
[ "$(version "$DB")" = 4 ] || fail "the database changed without a copy"
[ "$(copies)" = 0 ] || fail "a partial copy was left: $(ls "$T/relay")"
log "no room for a copy: refused, still version 4, no partial copy"

# --- 2. the upgrade
start_relay
grep -q "copied $DB to $DB.v4-[0-9]\{8\}T[0-9]\{6\}Z\.bak before upgrading \
it from schema version 4 to 5" "$T/relay.log" ||
  fail "the relay did not log the copy: $(cat "$T/relay.log")"
[ "$(copies)" = 1 ] || fail "not one copy: $(ls "$T/relay")"
COPY=$(find "$T/relay" -maxdepth 1 -name 'baton.db.v4-*.bak')
[ "$(stat -c %a "$COPY")" = 600 ] || fail "the copy is not private"
[ "$(version "$COPY")" = 4 ] || fail "the copy is not of version 4"
[ "$("$SQL" "$COPY" 'SELECT count(*) FROM tokens')" = 4 ] ||
  fail "the copy lacks the tokens"
[ "$(version "$DB")" = 5 ] || fail "the database is not at version 5"
"$RELAY_BIN" token list --data "$T/relay" >"$T/tokens.out"
for id in d4586876a0d7 2508d6478338 b043314f56d4 7b5f17ee5a63; do
  grep -q "^$id " "$T/tokens.out" || fail "token $id is gone"
done
log "upgraded from version 4 after a copy ($(basename "$COPY"))"

CLIENT_TOKEN=$STEER
write_agents
start_local laptop "$MACHINE"
wait_for 60 "the laptop to register with the old machine token" \
  machine_online laptop
new_repo "$T/repo"
SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
wait_output "$SID" "started session $SID" 60
baton send "$SID" "remember upgrades"
wait_output "$SID" "noted: upgrades" 60

rc=0
CLIENT_TOKEN=$READ baton send "$SID" "typed" >/dev/null 2>"$T/read.err" ||
  rc=$?
[ $rc -eq 1 ] && grep -q "read-only" "$T/read.err" ||
  fail "the old read token typed (exit $rc): $(cat "$T/read.err")"
grep -q "$SID" <<<"$(CLIENT_TOKEN=$READ baton --json sessions)" ||
  fail "the old read token cannot list sessions"
rc=0
CLIENT_TOKEN=$REVOKED baton sessions >/dev/null 2>"$T/revoked.err" || rc=$?
[ $rc -eq 3 ] || fail "the old revoked token was not refused (exit $rc)"
baton stop "$SID"
log "old tokens: steer steers, read reads, machine registers, revoked is out"

# --- 3. a laptop's state folder from before state versions
stop_laptop() {
  kill -TERM "$LOCAL_PID_laptop"
  wait "$LOCAL_PID_laptop" || fail "the laptop exited $? on SIGTERM"
}
stop_laptop
S=$T/state-laptop
for f in machine.json sessions.json; do
  [ -f "$S/$f" ] || fail "the laptop wrote no $f"
  grep -q '^	"version":	2,$' "$S/$f" || fail "$f has no version 2"
  # The same file as the release before wrote it: no "version" line.
  grep -v '^	"version":' "$S/$f" >"$T/$f.old"
  cp "$T/$f.old" "$S/$f"
done
start_local laptop ""
wait_for 60 "the laptop to register with its upgraded state" \
  machine_online laptop
for f in machine.json sessions.json; do
  grep -q "copied $S/$f to $S/$f.v1-[0-9]\{8\}T[0-9]\{6\}Z\.bak before \
upgrading it from state version 1 to 2" "$T/local-laptop.log" ||
    fail "no log line for the copy of $f"
  cmp -s "$T/$f.old" "$S/$f".v1-*.bak || fail "the copy of $f differs"
  grep -q '^	"version":	2,$' "$S/$f" || fail "$f was not upgraded"
done
grep -q "registered with the relay as local laptop" "$T/local-laptop.log" ||
  fail "the upgraded laptop did not register"
stop_laptop
log "machine.json and sessions.json of version 1: copied and upgraded"

# --- 4. state from a newer baton-local
# refused_local FILE: with FILE at state version 99, baton-local and pair
# exit 1 saying so, and FILE is left as it was.
refused_local() {
  local f=$1 rc=0
  cp "$S/$f" "$T/$f.now"
  sed -i 's/^\t"version":\t2,$/\t"version":\t99,/' "$S/$f"
  cp "$S/$f" "$T/$f.newer"
  timeout 30 "$LOCAL_BIN" --relay "$RELAY_URL" --name laptop --state "$S" \
    </dev/null >"$T/newer-$f.log" 2>&1 || rc=$?
  [ $rc -eq 1 ] || fail "baton-local with a newer $f exited $rc, not 1"
  grep -qF "the state folder $S was written by a newer baton-local (state \
version 99 in $f; this one knows 2); upgrade baton-local or use another \
--state" "$T/newer-$f.log" || fail "no clear refusal of a newer $f: \
$(cat "$T/newer-$f.log")"
  cmp -s "$S/$f" "$T/$f.newer" || fail "the newer $f was changed"
  log "a newer $f: $(tail -n 1 "$T/newer-$f.log")"
  cp "$T/$f.now" "$S/$f"
}
refused_local machine.json
refused_local sessions.json
cp "$S/machine.json" "$T/machine.json.now"
sed -i 's/^\t"version":\t2,$/\t"version":\t99,/' "$S/machine.json"
rc=0
timeout 30 "$LOCAL_BIN" pair --relay "$RELAY_URL" --name laptop --state "$S" \
  </dev/null >"$T/pair-newer.out" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "written by a newer baton-local" \
  "$T/pair-newer.out" || fail "pair over a newer machine.json exited $rc: \
$(cat "$T/pair-newer.out")"
cp "$T/machine.json.now" "$S/machine.json"
[ "$(find "$S" -name '*.v99-*' | wc -l)" = 0 ] || fail "a newer file was copied"

# --- 5. a database from a newer baton-relay
stop_relay
"$SQL" "$DB" 'PRAGMA user_version = 99'
for cmd in serve "token create"; do
  rc=0
  if [ "$cmd" = serve ]; then
    timeout 30 "$RELAY_BIN" serve --listen 127.0.0.1:0 --data "$T/relay" \
      >"$T/newer-relay.log" 2>&1 || rc=$?
  else
    "$RELAY_BIN" token create --data "$T/relay" --user alice \
      --kind client >"$T/newer-relay.log" 2>&1 || rc=$?
  fi
  [ $rc -eq 1 ] || fail "baton-relay $cmd on a newer database exited $rc"
  grep -qF "the data directory $T/relay was written by a newer baton-relay \
(schema version 99; this one knows 5); upgrade baton-relay or use another \
--data" "$T/newer-relay.log" || fail "no clear refusal of a newer database \
by $cmd: $(cat "$T/newer-relay.log")"
done
[ "$(version "$DB")" = 99 ] || fail "the newer database was changed"
[ "$(copies)" = 1 ] || fail "the newer database was copied"
log "a newer database: refused by serve and token create, left alone"
