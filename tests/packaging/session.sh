# session.sh: a short session through whichever programs RELAY_BIN,
# LOCAL_BIN, SANDBOX_BIN and CLIENT_BIN name (installed copies, for
# test-install.sh and fresh-install.sh). Sourced after lib.sh.
#
# short_session: a relay, a laptop daemon and the client on 127.0.0.1; a
# shell session in a new repository answers a command, moves to a sandbox
# (baton-sandbox, started by the relay), answers there, moves back, stops.
short_session() {
  local wt=$T/repo sid

  start_relay
  start_laptop installed
  new_repo "$wt"
  sid=$(baton start --machine laptop --dir "$wt" --agent shell)
  log "session $sid"
  baton send "$sid" 'echo "on the $((6 * 7))th line"'
  wait_output "$sid" "on the 42th line" 30

  baton --timeout 120 move "$sid" --to sandbox --wait >"$T/move.out" 2>&1 ||
    fail "the move to the sandbox failed: $(cat "$T/move.out")"
  session_on "$sid" sandbox || fail "the session is not on the sandbox"
  baton send "$sid" 'echo "in the $((2 * 3))th box"'
  wait_output "$sid" "in the 6th box" 60

  baton --timeout 120 move "$sid" --to laptop --wait >"$T/back.out" 2>&1 ||
    fail "the move back failed: $(cat "$T/back.out")"
  session_on "$sid" local || fail "the session is not back on the laptop"
  baton stop "$sid"
  log "the installed programs ran a session, moved and back"
}
