#!/usr/bin/env bash
# test_bench_peers.sh BUILD_DIR - tools/bench-peers at its shortest (one run, half-second
# windows, 100 idle sessions; private relay 1,000 x 1 left out, for time) with the chatd and chatd-bench of BUILD_DIR: it prints the
# side-by-side table with a figure in every cell (no "failed": every run lost and
# duplicated nothing), and stops every server it started, at the end and on SIGTERM.
# Figures are not checked. Skipped (77) without redis-server, inspircd or two cores.
set -uo pipefail
build=$(cd "${1:?usage: test_bench_peers.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/common.sh"
for tool in redis-server inspircd taskset; do
    if ! command -v "$tool" >/dev/null; then
        echo "skipped: $tool is not installed"
        exit 77
    fi
done
[ "$(nproc)" -ge 2 ] || { echo "skipped: one core"; exit 77; }
failed=0
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    failed=1
}
tmp=$(mktemp -d /tmp/chatd-bench-peers-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The processes whose command line names the harness's work folder (its servers).
# (Read without a process per entry: hundreds of them on a busy machine.)
left_in() {
    local f words
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d '' words <"$f" 2>/dev/null || continue
        [[ "${words[*]}" != *"$1"* ]] || echo "${f//[^0-9]/}"
    done
}

"$root/tools/bench-peers" --build "$build" --seconds 0.5 --runs 1 --sessions 100 \
    --workloads idle,private8,group,private-rate --private-rate 500 >"$tmp/table" 2>"$tmp/log"
status=$?
work=$(sed -n 's/^work folder: //p' "$tmp/log")
if [ "$status" -eq 0 ]; then ok "bench-peers exits 0"; else fail "bench-peers exited $status"; fi
if head -n 1 "$tmp/table" | grep -qx '| workload | chatd | Redis 7 pub/sub | InspIRCd 3 |'; then
    ok "the table names the three servers"
else
    fail "no table header"
fi
# Two header lines, one idle row, twelve rows for each of two message workloads, seven
# for the paced one.
rows=$(wc -l <"$tmp/table")
[ "$rows" -eq 34 ] && ok "34 lines" || fail "$rows lines, want 34"
grep -Eq '^\| same, chatd: messages per commit batch, request to reply \(mean\) \| [0-9.]+, [0-9.]+ ms / ?' "$tmp/table" ||
    grep -Eq '^\| same, chatd: messages per commit batch, request to reply \(mean\) \| [0-9.]+, [0-9.]+ ms \| - \| - \|' "$tmp/table" &&
    ok "chatd's own counters read" || fail "no commit batch row for chatd alone"
grep -Eq '^\| same, bytes to clients per delivery \| [1-9][0-9]* B \|' "$tmp/table" &&
    ok "bytes per delivery measured" || fail "no bytes per delivery for chatd"
grep -Eq "^\| same, chatd's MariaDB: CPU per delivery, core busy \| [0-9.]+ us, [0-9.]+ \| - \| - \|" \
    "$tmp/table" && ok "chatd's MariaDB measured" || fail "no MariaDB CPU row for chatd alone"
grep -q '^| private relay, 100 users, 500 messages/s offered: deliveries/s |' "$tmp/table" &&
    ok "the paced relay's row" || fail "no row of the paced relay"
bad=$(awk -F'|' 'NR > 2 && NF != 6' "$tmp/table")
[ -z "$bad" ] && ok "every row has four cells" || fail "rows with another count of cells: $bad"
if grep -q failed "$tmp/table"; then fail "a run failed"; else ok "no run failed"; fi
[ -n "$work" ] && [ -z "$(left_in "$work")" ] && ok "nothing left running" ||
    fail "left running: $(left_in "$work")"

# chatd over WebSocket over TLS (wss), on an I/O thread: its row is measured as the
# others.
"$root/tools/bench-peers" --build "$build" --seconds 0.5 --runs 1 --workloads private8 \
    --chatd-ws yes --chatd-tls yes --io-threads 1 >"$tmp/ws-table" 2>"$tmp/ws-log"
status=$?
if [ "$status" -eq 0 ]; then ok "bench-peers --chatd-ws exits 0"; else fail "bench-peers --chatd-ws exited $status"; fi
grep -q 'WebSocket yes, TLS yes' "$tmp/ws-log" && ok "the log says chatd speaks wss" ||
    fail "the log does not say WebSocket: $(head -3 "$tmp/ws-log")"
grep -Eq '^\| private relay, 100 users x 8 in flight: deliveries/s \| [1-9][0-9]* \|' \
    "$tmp/ws-table" && ok "chatd's WebSocket relay measured" ||
    fail "no WebSocket deliveries for chatd: $(cat "$tmp/ws-table") $(tail -5 "$tmp/ws-log")"

# Every server under callgrind: user-space instructions per delivery for all three
# (not in a sanitizer build, whose chatd cannot run under valgrind).
if grep -q '^CHATD_SANITIZE:STRING=.' "$build/CMakeCache.txt"; then
    ok "callgrind skipped: a sanitizer build"
else
    "$root/tools/bench-peers" --build "$build" --seconds 1 --runs 1 --workloads group \
        --callgrind yes >"$tmp/cg-table" 2>"$tmp/cg-log"
    status=$?
    if [ "$status" -eq 0 ]; then ok "bench-peers --callgrind exits 0"; else fail "bench-peers --callgrind exited $status"; fi
    grep -Eq '^\| same, user-space instructions per delivery \(callgrind\) \| [1-9][0-9]* \| [1-9][0-9]* \| [1-9][0-9]* \|$' \
        "$tmp/cg-table" && ok "instructions per delivery counted for the three servers" ||
        fail "no instruction counts: $(cat "$tmp/cg-table") $(grep -v '^==' "$tmp/cg-log" | tail -5)"
fi

# SIGTERM while the runs go on: every server is stopped.
"$root/tools/bench-peers" --build "$build" --seconds 30 --runs 1 --workloads private8 \
    >/dev/null 2>"$tmp/log2" &
harness=$!
for _ in $(seq 600); do
    grep -q '^run 1: ' "$tmp/log2" && break
    sleep 0.1
done
work=$(sed -n 's/^work folder: //p' "$tmp/log2")
[ -n "$(left_in "$work")" ] && ok "servers running" || fail "no server ran: $(cat "$tmp/log2")"
kill -TERM "$harness"
wait "$harness"
[ -z "$(left_in "$work")" ] && ok "SIGTERM stops every server" ||
    fail "left running after SIGTERM: $(left_in "$work")"
if [ "$failed" -ne 0 ]; then
    echo "bench-peers stderr:"
    cat "$tmp/log"
fi
exit "$failed"
