#!/usr/bin/env bash
# test-systemd-units.sh: the installed systemd units pass
# `systemd-analyze verify` (the relay's system unit, the laptop's user
# unit, and the user unit `baton-local install-service` writes), with
# their manual pages found; the relay's unit runs it as its own user in a
# hardened sandbox (`systemd-analyze security` rates it), writable only in
# its data folder; and its ExecStart, run by hand, starts a relay that
# serves.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is missing (apt-get install systemd;" \
    "scripts/packages-test.txt lists it)"
  exit 77
fi

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BATON_BIN/CMakeCache.txt")
DESTDIR=$T/root cmake --install "$BATON_BIN" >"$T/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -n 20 "$T/install.log")"
p=$T/root$prefix

# verify [--user] UNIT: systemd-analyze verify, on a copy whose programs
# are the installed ones under $T/root (verify checks that they exist),
# with the installed manual pages for Documentation=. Nothing may be
# said: an unknown or misspelt setting is only a warning.
verify() {
  local user=() unit copy man=()
  [ "$1" = --user ] && { user=(--user); shift; }
  unit=$1
  copy=$T/units/$(basename "$unit")
  mkdir -p "$T/units" "$T/run"
  sed "s|^ExecStart=$prefix/bin/|ExecStart=$p/bin/|" "$unit" >"$copy"
  command -v man >/dev/null || man=(--man=no)
  if ! MANPATH=$p/share/man XDG_RUNTIME_DIR=$T/run systemd-analyze \
      "${user[@]}" verify "${man[@]}" "$copy" >"$T/verify.out" 2>&1 ||
      [ -s "$T/verify.out" ]; then
    cat "$copy" >&2
    fail "systemd-analyze ${user[*]} verify $(basename "$unit"):" \
      "$(cat "$T/verify.out")"
  fi
}

relay_unit=$p/lib/systemd/system/baton-relay.service
verify "$relay_unit"
verify --user "$p/lib/systemd/user/baton-local.service"
log "both installed units verify"

# The relay's sandbox, setting by setting.
for want in User=baton-relay StateDirectory=baton-relay \
    NoNewPrivileges=yes PrivateTmp=yes ProtectSystem=strict \
    ProtectHome=yes PrivateDevices=yes CapabilityBoundingSet= \
    ProtectKernelTunables=yes ProtectKernelModules=yes \
    ProtectControlGroups=yes \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    SystemCallFilter=@system-service Restart=on-failure \
    Environment=BATON_RELAY_LISTEN=127.0.0.1:8080; do
  grep -qxF "$want" "$relay_unit" || fail "the relay's unit lacks $want"
done
# Writable: the data folder (StateDirectory) and nothing else.
! grep -qE '^(ReadWritePaths|ReadWriteDirectories)=' "$relay_unit" ||
  fail "the relay's unit opens more than its data folder for writing"
if ! systemd-analyze security --offline=true --threshold=25 \
    "$T/units/baton-relay.service" >"$T/security.out" 2>&1; then
  fail "systemd-analyze security rates the relay's unit above 2.5:" \
    "$(tail -n 1 "$T/security.out")"
fi
log "$(tail -n 1 "$T/security.out")"

# Its ExecStart, as systemd would run it, with a free port and a data
# folder of ours: every option is one baton-relay serve knows.
exec_start=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$T/units/baton-relay.service" |
  sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' ')
exec_start=${exec_start//'${BATON_RELAY_LISTEN}'/127.0.0.1:0}
exec_start=${exec_start//'%S'/$T/var}
exec_start=${exec_start//'$BATON_RELAY_OPTS'/--port-file $T/unit.port}
mkdir -p "$T/var/baton-relay"
read -ra cmd <<<"$exec_start"
[ "${cmd[0]}" = "$p/bin/baton-relay" ] ||
  fail "the relay's unit runs '${cmd[0]}'"
"${cmd[@]}" >"$T/unit-relay.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "the relay the unit's command starts" test -s "$T/unit.port"
[ -f "$T/var/baton-relay/baton.db" ] ||
  fail "the unit's relay keeps no records in its data folder"
log "the unit's command line starts a relay: ${cmd[*]}"

# The user unit install-service writes, with a systemctl that answers.
mkdir -p "$T/fake"
printf '#!/bin/sh\nexit 0\n' >"$T/fake/systemctl"
chmod +x "$T/fake/systemctl"
HOME=$T/home XDG_CONFIG_HOME=$T/config PATH=$T/fake:$PATH \
  "$p/bin/baton-local" install-service --relay ws://127.0.0.1:9 \
  --name unit-test >"$T/install-service.out" 2>&1 ||
  fail "install-service failed: $(cat "$T/install-service.out")"
verify --user "$T/config/systemd/user/baton-local.service"
log "the unit install-service writes verifies"
