#!/usr/bin/env bash
# test-local-service.sh: `baton-local install-service` writes a systemd
# user unit that runs this very program, restarts it on failure and keeps
# the settings it was given in local.conf, then enables and starts it
# (restarts it when it ran); with no user manager it says what to run;
# `uninstall-service` disables and removes it; `--launchd` writes a
# launchd agent instead. systemctl is a fake that records its arguments.
# `baton-local status` says whether the service and the daemon run,
# which relay it talks to and when it last connected (again after the
# relay comes back).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_STATE_HOME=$T/xstate
unset BATON_RELAY BATON_TOKEN
mkdir -p "$HOME" "$T/fake"
# The fake systemctl: "active" after enable --now until disable --now;
# no manager at all while $T/no-manager exists.
cat >"$T/fake/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$T/systemctl.log"
if [ -e "$T/no-manager" ]; then
  echo "Failed to connect to bus: No medium found" >&2
  exit 1
fi
case "\$*" in
*is-active*) [ -e "$T/active" ] && { echo active; exit 0; }
             echo inactive; exit 3 ;;
*"disable --now"*) rm -f "$T/active" ;;
*"enable --now"*) touch "$T/active" ;;
esac
exit 0
EOF
chmod +x "$T/fake/systemctl"
export PATH=$T/fake:$PATH
unit=$XDG_CONFIG_HOME/systemd/user/baton-local.service
conf=$XDG_CONFIG_HOME/baton/local.conf
exe=$(readlink -f "$LOCAL_BIN")

# local CMD ARGS...: baton-local CMD, output in $T/CMD.out; its status.
local_cmd() {
  local rc=0
  "$LOCAL_BIN" "$@" >"$T/$1.out" 2>&1 || rc=$?
  return $rc
}

log "no relay given and not paired: a usage error"
rc=0
local_cmd install-service || rc=$?
[ $rc -eq 2 ] || fail "install-service without a relay exited $rc"
grep -q 'which relay' "$T/install-service.out" ||
  fail "it did not say a relay is needed: $(cat "$T/install-service.out")"
[ ! -e "$unit" ] || fail "a unit was written without a relay"

log "install-service: the unit, the settings, daemon-reload, enable --now"
local_cmd install-service --relay ws://127.0.0.1:9 --name lap ||
  fail "install-service failed: $(cat "$T/install-service.out")"
[ -f "$unit" ] || fail "no unit at $unit"
for want in "ExecStart=$exe" Restart=on-failure WantedBy=default.target \
    "Environment=\"PATH=$PATH\"" \
    "Environment=\"XDG_CONFIG_HOME=$XDG_CONFIG_HOME\"" \
    "Environment=\"XDG_STATE_HOME=$XDG_STATE_HOME\""; do
  grep -qxF "$want" "$unit" || { cat "$unit" >&2; fail "the unit lacks $want"; }
done
grep -E '^(StandardOutput|StandardError)=' "$unit" &&
  fail "the unit sends the log elsewhere than the journal"
grep -qx 'relay = ws://127.0.0.1:9' "$conf" &&
  grep -qx 'name = lap' "$conf" ||
  fail "the settings are not in local.conf: $(cat "$conf")"
grep -q 'not paired with ws://127.0.0.1:9' "$T/install-service.out" ||
  fail "it did not note that the laptop is not paired yet"
grep -qx -- '--user daemon-reload' "$T/systemctl.log" &&
  grep -qx -- '--user enable --now baton-local.service' "$T/systemctl.log" ||
  fail "systemctl was not told to reload and enable: $(cat "$T/systemctl.log")"

log "installing again restarts the running service"
: >"$T/systemctl.log"
local_cmd install-service || fail "install-service again failed"
grep -qx -- '--user restart baton-local.service' "$T/systemctl.log" ||
  fail "the running service was not restarted: $(cat "$T/systemctl.log")"
local_cmd status || fail "status exited non-zero with the service active"
grep -q "^service: *systemd user unit $unit, active\$" "$T/status.out" ||
  fail "status does not show the active unit: $(cat "$T/status.out")"

log "uninstall-service: disable --now, the unit removed, settings kept"
: >"$T/systemctl.log"
local_cmd uninstall-service || fail "uninstall-service failed"
grep -qx -- '--user disable --now baton-local.service' "$T/systemctl.log" ||
  fail "the service was not disabled: $(cat "$T/systemctl.log")"
[ ! -e "$unit" ] || fail "the unit is still there"
[ -f "$conf" ] || fail "uninstall-service removed local.conf"
local_cmd uninstall-service || fail "a second uninstall-service failed"
grep -q 'no service installed' "$T/uninstall-service.out" ||
  fail "uninstall-service with nothing installed:" \
    "$(cat "$T/uninstall-service.out")"

log "no user manager: the unit is written and the commands are shown"
touch "$T/no-manager"
: >"$T/systemctl.log"
local_cmd install-service || fail "install-service without a manager failed"
[ -f "$unit" ] || fail "no unit written without a manager"
grep -q 'systemctl --user enable --now baton-local' "$T/install-service.out" ||
  fail "it did not say what to run: $(cat "$T/install-service.out")"
! grep -q enable "$T/systemctl.log" || fail "enable ran with no manager"
local_cmd status && fail "status says running with no manager and no daemon"
grep -q 'state unknown' "$T/status.out" ||
  fail "status does not say the unit's state is unknown: $(cat "$T/status.out")"
wants=$XDG_CONFIG_HOME/systemd/user/default.target.wants
mkdir -p "$wants"
ln -s "$unit" "$wants/baton-local.service"
local_cmd uninstall-service || fail "uninstall-service without a manager failed"
[ ! -e "$unit" ] && [ ! -L "$wants/baton-local.service" ] ||
  fail "the unit or its enablement link is left"
rm -f "$T/no-manager"

log "--launchd: a launchd agent"
local_cmd install-service --launchd || fail "install-service --launchd failed"
plist=$HOME/Library/LaunchAgents/dev.baton.local.plist
logs=$HOME/Library/Logs
[ -f "$plist" ] || fail "no plist at $plist"
flat <"$plist" >"$T/plist.flat"
for want in '<key>Label</key><string>dev.baton.local</string>' \
    "<key>ProgramArguments</key><array><string>$exe</string></array>" \
    '<key>RunAtLoad</key><true/>' \
    '<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>' \
    "<key>StandardErrorPath</key><string>$logs/baton-local.log</string>"; do
  grep -qF "$want" "$T/plist.flat" ||
    { cat "$plist" >&2; fail "the plist lacks $want"; }
done
if command -v python3 >/dev/null; then
  python3 -c 'import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
assert p["Label"] == "dev.baton.local", p
assert p["ProgramArguments"] == [sys.argv[2]], p
assert p["EnvironmentVariables"]["PATH"] == sys.argv[3], p' \
    "$plist" "$exe" "$PATH" || fail "the plist does not parse as expected"
fi
grep -q "launchctl load -w $plist" "$T/install-service.out" ||
  fail "it did not say how to load it: $(cat "$T/install-service.out")"
local_cmd uninstall-service --launchd ||
  fail "uninstall-service --launchd failed"
[ ! -e "$plist" ] || fail "the plist is still there"

log "status of a daemon that runs: its relay, name, pid, last connection"
start_relay
MACHINE_TOKEN=$(token fay machine)
CLIENT_TOKEN=$(token fay client)
sed -i "s|^relay = .*|relay = $RELAY_URL|" "$conf"
rc=0
local_cmd status || rc=$?
[ $rc -eq 3 ] || fail "status exited $rc with no daemon (want 3)"
grep -q '^daemon: *not running$' "$T/status.out" &&
  grep -q '^last connected: *never$' "$T/status.out" &&
  grep -q "^relay: *$RELAY_URL\$" "$T/status.out" ||
  fail "status before any daemon: $(cat "$T/status.out")"
BATON_TOKEN=$MACHINE_TOKEN "$LOCAL_BIN" >"$T/local-lap.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
wait_for 60 "the daemon to register" machine_online lap
# connected_at: when the daemon last connected, from its state file.
connected_at() {
  json_field "$(cat "$XDG_STATE_HOME/baton-local/local.state")" connected
}
wait_for 10 "the daemon's state file" test "$(connected_at)" -gt 0
local_cmd status || fail "status exited non-zero with the daemon running"
grep -q "^daemon: *running, pid $DAEMON\$" "$T/status.out" &&
  grep -q "^relay: *$RELAY_URL\$" "$T/status.out" &&
  grep -q '^machine: *lap$' "$T/status.out" &&
  grep -qE '^last connected: *[0-9-]+ [0-9:]+ \([0-9]+ s ago\)$' \
    "$T/status.out" ||
  fail "status with the daemon running: $(cat "$T/status.out")"

log "a second daemon on the same state folder is refused"
rc=0
BATON_TOKEN=$MACHINE_TOKEN timeout 20 "$LOCAL_BIN" >"$T/second.out" 2>&1 ||
  rc=$?
[ $rc -eq 1 ] &&
  grep -qF "another baton-local (pid $DAEMON) runs with the state folder" \
    "$T/second.out" ||
  fail "a second daemon on one state folder (exit $rc): $(cat "$T/second.out")"
kill -0 "$DAEMON" || fail "the first daemon died"

log "the relay goes and comes back: the new connection is recorded"
first=$(connected_at)
sleep 1
stop_relay
start_relay
wait_for 60 "the daemon to register again" machine_online lap
later() { [ "$(connected_at)" -gt "$first" ]; }
wait_for 10 "a later connection in the state file" later

kill -TERM "$DAEMON"
wait "$DAEMON" || fail "the daemon exited with status $? on SIGTERM"
rc=0
local_cmd status || rc=$?
[ $rc -eq 3 ] && grep -q '^daemon: *not running$' "$T/status.out" &&
  grep -qE '^last connected: *[0-9-]+ [0-9:]+ ' "$T/status.out" ||
  fail "status after the daemon stopped (exit $rc): $(cat "$T/status.out")"
log "status follows the daemon"
