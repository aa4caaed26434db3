# cluster.sh - `scripts/run --nodes K`: K chatd nodes on this machine joined through a
# private Redis, sharing the private MariaDB, behind HAProxy. Sourced by scripts/run
# (which has read the options and defines start_mariadb, make_certificate, ...), not run.
#
# Ports, from scripts/run's --port N: HAProxy on N (plain TCP) and N+1 (TLS, passed
# through to the nodes untouched); node k, named nk, on N+10k (plain), N+10k+1 (TLS) and
# N+10k+2 (admin, when the config enables [admin]). HAProxy starts each connection to a
# node with a PROXY v2 header, so the node sees (and limits, and logs) the client's
# address rather than HAProxy's; the nodes take that header on their chat ports, only
# from 127.0.0.1 ([server] proxy_protocol = v2, proxy_from = 127.0.0.1).

# Whether FILE's [admin] section says enable with a word config.c reads as true.
admin_enabled() {
    awk '
        /^[ \t]*\[/ { section = $0; gsub(/[][ \t\r]/, "", section); next }
        section == "admin" && /^[ \t]*enable[ \t]*=/ {
            value = $0
            sub(/^[^=]*=[ \t]*/, "", value)
            sub(/[ \t]+;.*$/, "", value) # an inline comment (inih: ; after a blank)
            sub(/[ \t\r]+$/, "", value)
            enable = value
        }
        END { exit !(enable == "yes" || enable == "true" || enable == "on" || enable == "1") }
    ' "$1"
}

# HAProxy's config for K nodes; with_admin: check each node's /healthz rather than
# opening a TCP connection to its chat port.
write_haproxy_config() {
    local k base check
    cat <<EOF
# Made by scripts/run --nodes $nodes at every start: changes here are lost.
# Without a daemon line in a global section it runs in the foreground, and says on stderr
# (scripts/run's) when a node goes down or up.
defaults
    mode tcp
    balance leastconn
    timeout connect 5s
    # A chat connection is idle most of the time and lives for hours. chatd decides
    # when an idle one goes ([server] idle_timeout, 300 s in the sample config, with
    # an error line the client understands), so these are longer than any sane value
    # of it; TCP keepalives find peers that vanished.
    timeout client 4h
    timeout server 4h
    timeout tunnel 4h
    option clitcpka
    option srvtcpka
    # A side that has half-closed its connection.
    timeout client-fin 30s
    timeout server-fin 30s
    timeout check 5s
    # A connection a node refuses (it has just died) goes to another node.
    retries 2
    option redispatch 1

frontend plain
    bind 127.0.0.1:$port
    default_backend nodes

frontend tls
    bind 127.0.0.1:$tls_port
    default_backend nodes_tls

backend nodes
EOF
    if [ -n "$with_admin" ]; then
        printf '    option httpchk\n    http-check send meth GET uri /healthz\n'
    fi
    for k in $(seq "$nodes"); do
        base=$((port + 10 * k))
        if [ -n "$with_admin" ]; then
            # The admin listener takes no PROXY header (a check on another port gets
            # none unless asked for).
            check="check port $((base + 2)) inter 2s"
        else
            # Each check is a connection with a PROXY LOCAL header, which the node
            # counts as 127.0.0.1's in its [limits] connections_per_address like a
            # client's: 6 a minute.
            check="check check-send-proxy inter 10s"
        fi
        # The first connection a node fails takes it out until its checks pass again.
        echo "    server n$k 127.0.0.1:$base send-proxy-v2 $check fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"
    done
    printf '\n# The TLS listeners: the same nodes, up or down as in the backend above; the PROXY\n'
    printf '# header comes before the TLS handshake, which HAProxy passes through.\nbackend nodes_tls\n'
    for k in $(seq "$nodes"); do
        echo "    server n$k 127.0.0.1:$((port + 10 * k + 1)) send-proxy-v2 track nodes/n$k"
    done
}

# A process's output on scripts/run's stderr, each line led by NAME. It ignores Ctrl-C
# (which reaches this script's process group), so the lines of a graceful stop still
# come through.
prefixed() {
    trap '' INT
    exec sed -u "s/^/$1| /" >&2
}

node_pids=()    # by node number
haproxy_pid=
filter_pids=()  # the prefixed filters of their output
stopping=
# The first Ctrl-C or SIGTERM: HAProxy closes its ports and lets open connections run
# (soft stop, SIGUSR1) while every node stops gracefully (SIGTERM: it finishes the
# requests in flight, then closes its sessions, which ends HAProxy's connections). A
# second one: HAProxy and the nodes exit at once.
stop_cluster() {
    local haproxy_signal=USR1 pid
    [ -z "$stopping" ] || haproxy_signal=TERM
    stopping=1
    [ -z "$haproxy_pid" ] || kill "-$haproxy_signal" "$haproxy_pid" 2>/dev/null || true
    for pid in "${node_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
}

cleanup_cluster() {
    local pid
    [ -n "$stopping" ] || stop_cluster
    # Their output filters end with them.
    for pid in "${node_pids[@]}" ${haproxy_pid:+"$haproxy_pid"} "${filter_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    "$CHATD_ROOT/scripts/redis" stop "$var/redis"
    stop_mariadb
}

# start_logged NAME COMMAND...: COMMAND in the background in a session of its own (a
# terminal's Ctrl-C reaches only this script), its output on stderr with each line led
# by NAME; sets started_pid.
start_logged() {
    local name=$1 fd
    shift
    exec {fd}> >(prefixed "$name")
    filter_pids+=("$!")
    setsid "$@" >&"$fd" 2>&1 &
    started_pid=$!
    exec {fd}>&-
}

start_node() { # K
    local k=$1 base=$((port + 10 * $1))
    start_logged "n$k" "$build_dir/chatd" -l "127.0.0.1:$base,127.0.0.1:$((base + 1)) tls" \
        "${chatd_args[@]}" --set "admin.listen=127.0.0.1:$((base + 2))" \
        --set server.proxy_protocol=v2 --set server.proxy_from=127.0.0.1 \
        --set "web.listen=127.0.0.1:$((base + 3))" \
        --set cluster.enable=yes --set "cluster.node=n$k" \
        --set "cluster.redis=unix:$var/redis/redis.sock" \
        --set "cluster.redis_password_file=$var/redis/password"
    node_pids[k]=$started_pid
}

# Until every node accepts connections; a node that exits first stops the script.
wait_for_nodes() {
    local k pending status
    for _ in $(seq 600); do
        pending=0
        for k in $(seq "$nodes"); do
            [ -n "$stopping" ] && return 0
            if ! alive "${node_pids[k]}"; then
                wait "${node_pids[k]}" && status=0 || status=$?
                echo "scripts/run: node n$k exited at start (status $status); stopping the others" >&2
                exit 1
            fi
            listening $((port + 10 * k)) || pending=1
        done
        [ "$pending" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "scripts/run: not every node listens after 60 s; stopping them" >&2
    exit 1
}

start_haproxy() {
    local cfg="$var/haproxy/haproxy.cfg" with_admin=
    admin_enabled "$config" && with_admin=1
    mkdir -p "$var/haproxy"
    write_haproxy_config >"$cfg"
    haproxy -c -q -f "$cfg" || {
        echo "scripts/run: HAProxy refuses the config made for it: $cfg" >&2
        exit 1
    }
    start_logged haproxy haproxy -f "$cfg"
    haproxy_pid=$started_pid
    for _ in $(seq 100); do
        [ -n "$stopping" ] && return 0
        alive "$haproxy_pid" || break
        listening "$port" && return 0
        sleep 0.1
    done
    echo "scripts/run: HAProxy did not start (see its lines above); stopping the nodes" >&2
    exit 1
}

say_where() {
    local k base admin=
    admin_enabled "$config" && admin=1
    echo "a cluster of $nodes chatd nodes (var folder $var). Ctrl-C stops it all."
    echo "  HAProxy (pid $haproxy_pid): 127.0.0.1:$port (plain TCP) and 127.0.0.1:$tls_port (TLS)," \
        "config $var/haproxy/haproxy.cfg"
    for k in $(seq "$nodes"); do
        base=$((port + 10 * k))
        echo "  node n$k (pid ${node_pids[k]}): 127.0.0.1:$base (plain), 127.0.0.1:$((base + 1))" \
            "(TLS), for HAProxy only (PROXY v2)${admin:+; 127.0.0.1:$((base + 2)) (admin)}"
        print_web_url $((base + 3)) | sed 's/^/    /'
    done
    echo "  Redis: $var/redis/redis.sock (no TCP; password in $var/redis/password)"
    echo "  MariaDB: $var/mariadb/mysqld.sock"
    echo "try: printf '{\"cmd\":\"ping\",\"id\":1}' | nc -q1 127.0.0.1 $port"
    echo " or: $build_dir/client/chat --tls --ca-file $tls/cert.pem --port $tls_port"
}

# Until HAProxy and every node have exited. A node that exits on its own leaves the
# others serving (HAProxy sends its clients elsewhere); HAProxy exiting on its own, or
# the last node, stops the rest. The status: the first one not 0 of the nodes, or of
# HAProxy when it exited on its own.
wait_for_cluster() {
    local live=("${node_pids[@]}" ${haproxy_pid:+"$haproxy_pid"}) done_pid status=0 st pid k still
    while [ ${#live[@]} -gt 0 ]; do
        done_pid=
        wait -n -p done_pid "${live[@]}" && st=0 || st=$?
        [ -n "${done_pid:-}" ] || continue # a trapped signal woke the wait
        still=()
        for pid in "${live[@]}"; do [ "$pid" = "$done_pid" ] || still+=("$pid"); done
        live=("${still[@]}")
        if [ "$done_pid" != "$haproxy_pid" ] || [ -z "$stopping" ]; then
            [ "$status" -ne 0 ] || status=$st
        fi
        if [ -n "$stopping" ]; then
            # The nodes are gone: the connections HAProxy still holds only wait for
            # their clients to close, so it may stop at once.
            [ "${live[*]}" != "$haproxy_pid" ] || kill -TERM "$haproxy_pid" 2>/dev/null || true
        elif [ "$done_pid" = "$haproxy_pid" ]; then
            echo "scripts/run: HAProxy exited (status $st); stopping the nodes" >&2
            stop_cluster
        elif [ "${live[*]}" = "$haproxy_pid" ]; then
            echo "scripts/run: the last node exited (status $st); stopping HAProxy" >&2
            stop_cluster
            kill -TERM "$haproxy_pid" 2>/dev/null || true
        else
            for k in $(seq "$nodes"); do
                [ "${node_pids[k]}" != "$done_pid" ] ||
                    echo "scripts/run: node n$k exited (status $st); the others go on" >&2
            done
        fi
    done
    return "$status"
}

run_cluster() {
    trap cleanup_cluster EXIT
    trap stop_cluster INT TERM
    start_mariadb
    "$CHATD_ROOT/scripts/redis" start "$var/redis"
    make_certificate
    make_admin_token
    set_chatd_args
    for k in $(seq "$nodes"); do
        start_node "$k"
    done
    wait_for_nodes
    [ -n "$stopping" ] || start_haproxy
    [ -n "$stopping" ] || say_where
    wait_for_cluster && exit 0 || exit $?
}
