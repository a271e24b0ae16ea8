#!/usr/bin/env bash
# test-tls.sh: everything over wss:// with a certificate the test makes.
# A throwaway CA signs a certificate for 127.0.0.1 and localhost; the relay
# serves it and hands the CA to its sandboxes (--ca), the laptop daemon and
# the client trust it (--ca). A session starts, takes input, moves to a
# sandbox and back. Then the refusals: no CA, another CA, a certificate for
# another name, plain ws:// to the TLS port, a relay asked to listen beyond
# loopback without TLS, and bad certificate files at the relay's start.
# Every server listens on 127.0.0.1 only.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

command -v openssl >/dev/null ||
  fail "the openssl tool is missing: apt-get install openssl" \
    "(or scripts/deps.sh --test)"

# make_ca NAME: a CA key and self-signed certificate, $T/NAME.{key,pem}.
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/$1.key" -out "$T/$1.pem" -days 2 \
    -subj "/CN=Baton test CA $1" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>>"$T/openssl.log"
}

# make_cert NAME CA SAN: a server key and certificate signed by CA.
make_cert() {
  local name=$1 ca=$2 san=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/$name.key" -out "$T/$name.csr" -subj "/CN=$name" \
    2>>"$T/openssl.log"
  printf '%s\n' "subjectAltName=$san" basicConstraints=CA:FALSE \
    extendedKeyUsage=serverAuth >"$T/$name.ext"
  openssl x509 -req -in "$T/$name.csr" -CA "$T/$ca.pem" -CAkey "$T/$ca.key" \
    -CAcreateserial -out "$T/$name.pem" -days 2 -extfile "$T/$name.ext" \
    2>>"$T/openssl.log"
}

make_ca ca
make_ca other-ca
make_cert server ca "IP:127.0.0.1,DNS:localhost"
make_cert elsewhere ca "DNS:example.invalid"
log "made a CA, a certificate for 127.0.0.1 and localhost," \
  "and one for example.invalid"

RELAY_ARGS=(--tls-cert "$T/server.pem" --tls-key "$T/server.key"
  --ca "$T/ca.pem")
RELAY_SCHEME=wss
LOCAL_ARGS=(--ca "$T/ca.pem")
start_relay
grep -q "listening on wss://127.0.0.1:$RELAY_PORT" "$T/relay.log" ||
  fail "the relay does not say it serves wss://"
CLIENT_TOKEN=$(token tls client)
MACHINE_TOKEN=$(token tls machine)
unset BATON_CA

# baton ARGS...: the client, trusting our CA.
baton() {
  BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN "$CLIENT_BIN" \
    --ca "$T/ca.pem" "$@"
}

write_agents
start_local laptop "$MACHINE_TOKEN"
wait_for 60 "the laptop to register over wss://" machine_online laptop

# The whole flow, over wss://.
WT=$T/laptop/repo
mkdir -p "$WT"
git -C "$WT" init -q
printf 'over TLS\n' >"$WT/notes.txt"
git -C "$WT" add notes.txt
git -C "$WT" commit -q -m first
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "started session $SID in $WT" 60
baton send "$SID" "remember the relay spoke TLS"
wait_output "$SID" "noted: the relay spoke TLS" 60
baton move "$SID" --to sandbox --wait >"$T/move1.out"
session_on "$SID" sandbox || fail "the session is not on the sandbox"
grep -q "relay wss://127.0.0.1:$RELAY_PORT, CAs from $T/ca.pem" \
  "$T"/relay/sandboxes/*/sandbox.log ||
  fail "the sandbox was not given wss:// and the relay's --ca"
baton send "$SID" "recall"
wait_output "$SID" "turn 1: remember the relay spoke TLS" 60
baton move "$SID" --to laptop --wait >"$T/move2.out"
session_on "$SID" local || fail "the session did not come back to the laptop"
baton send "$SID" "recall"
wait_count "$SID" "turn 1: remember the relay spoke TLS" 2 60
log "a session started, moved to a sandbox and back, all over wss://"

# Output of commands expected to fail goes to *.log files, which lib.sh
# scans for sanitizer reports; each is also checked before it is reused.
sanitizer_clean() {
  ! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$1" ||
    fail "a sanitizer reported errors in $1: $(head -n 20 "$1")"
}

# expect_cert_refusal WHAT PATTERN ARGS...: the client fails at once, not
# after its timeout (exit 6 or 1), with a message about the certificate
# that matches PATTERN.
expect_cert_refusal() {
  local what=$1 pattern=$2 rc=0 err=$T/client-refused.log start=$SECONDS
  shift 2
  BATON_TOKEN=$CLIENT_TOKEN timeout 60 "$CLIENT_BIN" --timeout 30 "$@" \
    machines >"$T/refused.out" 2>"$err" </dev/null || rc=$?
  sanitizer_clean "$err"
  [ $rc -eq 6 ] || [ $rc -eq 1 ] || {
    cat "$err" >&2; fail "$what: exit $rc, not 6 or 1"
  }
  [ $((SECONDS - start)) -lt 20 ] ||
    fail "$what: the client kept retrying a refused certificate"
  grep -v '\[lws\]' "$err" | grep -i 'certificate' >/dev/null ||
    fail "$what: the message does not mention the certificate: $(cat "$err")"
  grep -qiE "$pattern" "$err" ||
    fail "$what: the message does not say '$pattern': $(cat "$err")"
  [ ! -s "$T/refused.out" ] || fail "$what: printed $(cat "$T/refused.out")"
  log "$what: exit $rc: $(grep -v '\[lws\]' "$err" | head -n 1)"
}
expect_cert_refusal "no --ca (the system store does not know our CA)" \
  'not trusted.*--ca' --relay "$RELAY_URL"
expect_cert_refusal "a CA that did not sign the certificate" \
  'not trusted' --relay "$RELAY_URL" --ca "$T/other-ca.pem"
BATON_CA=$T/other-ca.pem expect_cert_refusal "BATON_CA naming another CA" \
  'not trusted' --relay "$RELAY_URL"

# start_other_relay NAME ADDR CERT: another TLS relay on loopback; its
# port goes to $T/NAME.port.
start_other_relay() {
  mkdir -p "$T/relay-$1"
  "$RELAY_BIN" serve --listen "$2:0" --data "$T/relay-$1" \
    --port-file "$T/$1.port" --tls-cert "$T/$3.pem" --tls-key "$T/$3.key" \
    >>"$T/relay-$1.log" 2>&1 &
  PIDS+=("$!")
  wait_for 30 "the $1 relay to listen" test -s "$T/$1.port"
}

# A relay whose certificate names example.invalid only.
start_other_relay elsewhere 127.0.0.1 elsewhere
expect_cert_refusal "a certificate for example.invalid at 127.0.0.1" \
  'not made out for 127\.0\.0\.1' \
  --relay "wss://127.0.0.1:$(cat "$T/elsewhere.port")" --ca "$T/ca.pem"

# At ::1 the certificate for 127.0.0.1 and localhost does not fit either
# (lws 4.1 checks no IPv6 address itself; the link does).
if grep -q '^0\{31\}1 .* lo$' /proc/net/if_inet6 2>/dev/null; then
  start_other_relay ipv6 '[::1]' server
  expect_cert_refusal "a certificate for 127.0.0.1 at ::1" \
    'not made out for ::1' --relay "wss://[::1]:$(cat "$T/ipv6.port")" \
    --ca "$T/ca.pem"
else
  log "no IPv6 loopback here: the ::1 case is left to unit/tls"
fi

# Plain ws:// to the TLS port gets no relay: exit 6, nothing printed.
rc=0
BATON_TOKEN=$CLIENT_TOKEN timeout 60 "$CLIENT_BIN" --timeout 3 \
  --relay "ws://127.0.0.1:$RELAY_PORT" machines >"$T/plain.out" \
  2>"$T/client-plain.log" </dev/null || rc=$?
sanitizer_clean "$T/client-plain.log"
[ $rc -eq 6 ] || {
  cat "$T/client-plain.log" >&2; fail "ws:// to the TLS port: exit $rc, not 6"
}
[ ! -s "$T/plain.out" ] ||
  fail "ws:// to the TLS port printed $(cat "$T/plain.out")"
grep -q 'wss://' "$T/client-plain.log" ||
  fail "ws:// to the TLS port: no hint of wss://: $(cat "$T/client-plain.log")"
log "ws:// to the TLS port: exit 6: $(head -n 1 "$T/client-plain.log")"

# A daemon without our CA says why it cannot register, and keeps trying.
mkdir -p "$T/home-nocert"
HOME=$T/home-nocert BATON_TOKEN=$MACHINE_TOKEN "$LOCAL_BIN" \
  --relay "$RELAY_URL" --name nocert --state "$T/state-nocert" \
  --agents "$T/agents.json" >>"$T/local-nocert.log" 2>&1 &
NOCERT_PID=$!
PIDS+=("$NOCERT_PID")
cert_logged() {
  grep -q "WARN  baton-local\[host\].*certificate is not trusted" \
    "$T/local-nocert.log"
}
wait_for 30 "baton-local without the CA to log the refused certificate" \
  cert_logged
kill -0 "$NOCERT_PID" || fail "baton-local without the CA stopped"
! machine_online nocert ||
  fail "a daemon that does not trust the relay registered"
log "baton-local without --ca logs:" \
  "$(grep -m1 'host.*certificate' "$T/local-nocert.log" | cut -c26-)"

# expect_relay_refusal WHAT PATTERN ARGS...: baton-relay serve exits 1 or 2
# at once, with a message matching PATTERN, and never listens. Its data
# folder is a plain file, so even a relay that skipped the check would stop
# before listening.
: >"$T/not-a-folder"
expect_relay_refusal() {
  local what=$1 pattern=$2 rc=0 out=$T/relay-refused.log
  shift 2
  timeout 30 "$RELAY_BIN" serve --data "$T/not-a-folder" \
    --port-file "$T/refused.port" "$@" >"$out" 2>&1 || rc=$?
  sanitizer_clean "$out"
  [ $rc -eq 1 ] || [ $rc -eq 2 ] || {
    cat "$out" >&2; fail "$what: exit $rc, not 1 or 2"
  }
  grep -qiE -- "$pattern" "$out" ||
    fail "$what: the message does not say '$pattern': $(cat "$out")"
  [ ! -e "$T/refused.port" ] || fail "$what: the relay listened"
  log "$what: exit $rc: $(head -n 1 "$out")"
}
expect_relay_refusal "0.0.0.0 without TLS" \
  'refusing to listen on 0\.0\.0\.0.*--tls-cert.*--insecure' --listen 0.0.0.0:0
expect_relay_refusal "[::] without TLS" 'refusing.*--insecure' --listen '[::]:0'
expect_relay_refusal "a key that is not the certificate's" \
  "$T/other-ca.key does not belong to the certificate" --listen 127.0.0.1:0 \
  --tls-cert "$T/server.pem" --tls-key "$T/other-ca.key"
expect_relay_refusal "the certificate and key swapped" 'swapped' \
  --listen 127.0.0.1:0 --tls-cert "$T/server.key" --tls-key "$T/server.pem"
expect_relay_refusal "a missing certificate" \
  "$T/missing.pem: cannot read the certificate" --listen 127.0.0.1:0 \
  --tls-cert "$T/missing.pem" --tls-key "$T/server.key"
expect_relay_refusal "a certificate without its key" 'go together' \
  --listen 127.0.0.1:0 --tls-cert "$T/server.pem"
expect_relay_refusal "a --ca that is a key" "$T/ca.key holds no certificate" \
  --listen 127.0.0.1:0 --tls-cert "$T/server.pem" --tls-key "$T/server.key" \
  --ca "$T/ca.key"

baton stop "$SID"
echo "tls: OK"
