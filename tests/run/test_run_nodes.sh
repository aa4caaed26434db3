#!/usr/bin/env bash
# test_run_nodes.sh BUILD_DIR - `scripts/run --nodes 3` with the chatd of BUILD_DIR, in a
# temporary var folder: users register, log in and ping through HAProxy's port, landing
# on every node (each node's /metrics counts its pings), and each node sees the client's
# own address (HAProxy's PROXY v2 header); `chat` logs in through the TLS
# port; Redis is reached through its socket only, with its password, and has no TCP
# port; SIGTERM stops every process the script started; --nodes 0 and --nodes x are
# refused. Messages between users of different nodes are not tried: routing them is
# the cluster's own work (its tests are elsewhere).
# Skipped (77) without redis-server, haproxy or nc.
set -uo pipefail
build=$(cd "${1:?usage: test_run_nodes.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/common.sh"
for tool in redis-server redis-cli haproxy nc; do
    if ! command -v "$tool" >/dev/null; then
        echo "skipped: $tool is not installed"
        exit 77
    fi
done
nodes=3
failed=0
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    failed=1
}
check() { # check WHAT COMMAND...: the command must succeed
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# --nodes must be a whole number of 1 or more (checked before anything is built or run).
for bad in 0 x; do
    out=$("$root/scripts/run" --nodes "$bad" --build-dir "$build" 2>&1)
    status=$?
    if [ "$status" -eq 2 ] && [[ "$out" == *"--nodes needs a whole number"* ]]; then
        ok "--nodes $bad is refused"
    else
        fail "--nodes $bad: status $status, output: $out"
    fi
done

tmp=$(mktemp -d /tmp/chatd-run-nodes.XXXXXX)
var=$tmp/var
run_pid=
finish() {
    if [ -n "$run_pid" ] && alive "$run_pid"; then
        kill -TERM "$run_pid"
        wait "$run_pid"
    fi
    # Should scripts/run have failed to, stop what it started (both do nothing otherwise).
    "$root/scripts/redis" stop "$var/redis" >/dev/null 2>&1
    "$root/scripts/mariadb" stop "$var/mariadb" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap finish EXIT

# Ports: HAProxy on P and P+1, node k on P+10k .. P+10k+2: a base with all of them free,
# below the ports the system gives outgoing connections (which no probe sees).
free_base() {
    local base p taken first span
    read -r first _ </proc/sys/net/ipv4/ip_local_port_range
    span=$(((first - 10000) / 40))
    [ "$span" -gt 0 ] || span=1
    for _ in $(seq 20); do
        base=$((10000 + RANDOM % span * 40))
        taken=
        for p in $base $((base + 1)) $(seq $((base + 10)) $((base + 10 * nodes + 2))); do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && taken=1
        done
        [ -n "$taken" ] || { echo "$base"; return 0; }
    done
    return 1
}
port=$(free_base) || { echo "FAIL: no free ports"; exit 1; }

# The sample config with the admin listener on (each node's /metrics says where users
# landed, and HAProxy checks /healthz) and cheap password hashes.
sed -e '/^\[admin\]/,/^\[/ s/^enable = no$/enable = yes/' \
    -e 's/^password_opslimit = .*/password_opslimit = 1/' \
    -e 's/^password_memlimit_kib = .*/password_memlimit_kib = 8192/' \
    "$root/config/chatd.conf" >"$tmp/chatd.conf"

"$root/scripts/run" --nodes "$nodes" --port "$port" --var "$var" --config "$tmp/chatd.conf" \
    --build-dir "$build" >"$tmp/run.log" 2>&1 &
run_pid=$!
# The banner is written line by line: wait for its last line (" or: ...chat --tls").
for _ in $(seq 1200); do
    grep -q "^ or: .*chat --tls" "$tmp/run.log" && break
    alive "$run_pid" || break
    sleep 0.1
done
if ! grep -q "^a cluster of $nodes chatd nodes" "$tmp/run.log" ||
    ! grep -q "^ or: .*chat --tls" "$tmp/run.log"; then
    alive "$run_pid" || { wait "$run_pid"; echo "scripts/run exited with status $?"; }
    echo "FAIL: scripts/run --nodes $nodes did not start; its output:"
    cat "$tmp/run.log"
    exit 1
fi
ok "scripts/run --nodes $nodes started (HAProxy on $port)"

# Every process it started, for the check at the end: its descendants (nodes, HAProxy,
# the filters of their output), and MariaDB and Redis, which leave its process tree.
descendants() { # PID
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        { pid = $1; sub(/.*\) /, ""); parent[pid] = $2 }
        END {
            found[root] = 1
            do {
                more = 0
                for (p in parent)
                    if (!(p in found) && (parent[p] in found)) { found[p] = 1; more = 1 }
            } while (more)
            for (p in found) if (p != root) print p
        }'
}
pids=("$run_pid" "$(cat "$var/redis/redis.pid")" "$(cat "$var/mariadb/mysqld.pid")")
mapfile -t -O ${#pids[@]} pids < <(descendants "$run_pid")
printed=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$tmp/run.log" | wc -l)
check "scripts/run names the pids of HAProxy and every node ($printed)" test "$printed" -eq $((nodes + 1))

# One connection through HAProxy (nc): register, log in, ping, each awaiting its reply.
session() { # USER
    local user=$1 line request reply status=0
    coproc NC { nc 127.0.0.1 "$port"; }
    for request in "{\"cmd\":\"register\",\"user\":\"$user\",\"passwd\":\"pw-$user\"}" \
        "{\"cmd\":\"login\",\"user\":\"$user\",\"passwd\":\"pw-$user\"}" '{"cmd":"ping"}'; do
        printf '%s' "$request" >&"${NC[1]}"
        reply=$(sed 's/{"cmd":"\([a-z_]*\)".*/\1_reply/' <<<"$request")
        line=
        IFS= read -r -t 10 line <&"${NC[0]}" || true
        if [[ "$line" != *"\"cmd\":\"$reply\",\"result\":\"success\""* ]]; then
            echo "FAIL: $user: $request was answered: $line"
            status=1
            break
        fi
    done
    kill "$NC_PID" 2>/dev/null
    wait "$NC_PID" 2>/dev/null
    return "$status"
}
sessions=$((2 * nodes))
for i in $(seq "$sessions"); do
    session "user$i" || failed=1
done
ok "$sessions users registered, logged in and pinged through 127.0.0.1:$port"

# The nodes see a client's own address, which HAProxy's PROXY v2 header tells them, and
# not HAProxy's: a failed login from 127.0.0.2 is logged with that address.
printf '{"cmd":"login","user":"user1","passwd":"not-the-password"}' |
    timeout 10 nc -q 2 -s 127.0.0.2 127.0.0.1 "$port" >"$tmp/wrong-login.out" 2>&1
logged=
for _ in $(seq 100); do
    if grep -qE "^n[0-9]+\| .*failed login for 'user1' from 127\.0\.0\.2:[0-9]+" "$tmp/run.log"; then
        logged=1
        break
    fi
    sleep 0.1
done
check "a node logs the failed login from 127.0.0.2, the client's address through HAProxy" \
    test -n "$logged"

# Where they landed: each node's ping count, from its admin listener.
pings() { # PORT: the node's count of ping replies
    local answer
    answer=$(exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && timeout 5 cat <&3)
    sed -n 's/^chatd_replies_total{cmd="ping",result="success"} \([0-9]*\).*/\1/p' <<<"$answer" |
        grep . || echo 0
}
total=0
for k in $(seq "$nodes"); do
    n=$(pings $((port + 10 * k + 2)))
    total=$((total + n))
    check "node n$k answered some of the pings ($n)" test "$n" -gt 0
done
check "the nodes answered $sessions pings in all ($total)" test "$total" -eq "$sessions"

# chat, through the TLS port (passed through to the nodes' TLS listeners).
mkdir -p "$tmp/home"
out=$(printf '/login user1 pw-user1\n' | HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home \
    XDG_STATE_HOME=$tmp/home timeout 30 "$build/client/chat" --tls --ca-file "$var/tls/cert.pem" \
    --port $((port + 1)) 2>&1)
status=$?
if [ "$status" -eq 0 ] && [[ "$out" == *"logged in as user1"* ]]; then
    ok "chat logs in through the TLS port"
else
    fail "chat --tls through HAProxy: status $status, output: $out"
fi

# Redis: a socket only this user reaches, a password, and no TCP at all.
redis_pid=$(cat "$var/redis/redis.pid")
mode_is() { [ "$(stat -c %a "$1")" = "$2" ]; }
check "VAR/redis at mode 700" mode_is "$var/redis" 700
check "the Redis socket at mode 600" mode_is "$var/redis/redis.sock" 600
check "the Redis password at mode 600" mode_is "$var/redis/password" 600
redis() { REDISCLI_AUTH=$(cat "$var/redis/password") redis-cli -s "$var/redis/redis.sock" "$@"; }
check "Redis listens on no TCP port (port $(redis config get port | tail -n 1))" \
    test "$(redis config get port | tail -n 1)" = 0
tcp_sockets() { # PID: the TCP sockets (any state) the process holds
    local inode
    for inode in $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n'); do
        awk -v inode="$inode" '$10 == inode' /proc/net/tcp /proc/net/tcp6
    done
}
check "the redis-server process holds no TCP socket" test -z "$(tcp_sockets "$redis_pid")"
check "Redis refuses a client without the password" \
    bash -c "redis-cli -s '$var/redis/redis.sock' ping 2>&1 | grep -q NOAUTH"
clients=$(redis info clients | sed -n 's/^connected_clients:\([0-9]*\).*/\1/p')
check "the nodes are connected to Redis ($clients clients, this one included)" \
    test "${clients:-0}" -gt "$nodes"

# SIGTERM: every process it started ends, and the script with status 0.
kill -TERM "$run_pid"
for _ in $(seq 600); do
    alive "$run_pid" || break
    sleep 0.1
done
wait "$run_pid"
status=$?
run_pid=
check "scripts/run exits 0 after SIGTERM (status $status)" test "$status" -eq 0
left=
for pid in "${pids[@]}"; do
    alive "$pid" && left="$left $pid"
done
for cmdline in $(grep -alF "$tmp" /proc/[0-9]*/cmdline 2>/dev/null); do
    pid=${cmdline#/proc/}
    pid=${pid%/cmdline}
    alive "$pid" && left="$left $pid"
done
check "none of the ${#pids[@]} processes it started is left (${left:-none})" test -z "$left"

if [ "$failed" -ne 0 ]; then
    echo "scripts/run's output:"
    cat "$tmp/run.log"
fi
exit "$failed"
