# common.sh - shared by scripts/run, scripts/test and scripts/redis: the packages chatd
# needs, how to configure and build it, and whether a process still runs. Sourced, not run.

CHATD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages, and why each is needed:
#   cmake, pkg-config, gcc, make   the build
#   libevent-dev                   the event loop, listeners, bufferevents, timers, signals
#   libjansson-dev                 JSON on the wire and in the plugin ABI
#   libinih-dev                    the INI config file parser
#   uthash-dev                     the host's hash tables (header-only)
#   libmariadb-dev                 MariaDB Connector/C, for the database pool
#   libsodium-dev                  Argon2id password hashing in the chat plugin
#   mariadb-server                 the private MariaDB instance run and test start
#   check, libsubunit-dev          the unit and integration test framework
#   clang, libclang-rt-14-dev      the sanitizer build of the test suite (ASan + UBSan + LSan)
#   clang-format                   the formatting check
#   git                            the formatting check lists the files to check with `git ls-files`
#   netcat-openbsd                 `nc`: scripts/test-example, and talking to a running chatd by hand
#   libedit-dev                    line editing and history in `chat`, the terminal client (BSD)
#   libssl-dev                     TLS: chatd's TLS listeners (with libevent's OpenSSL
#                                  bufferevents), `chat --tls` and `chatd-bench --tls`
#   openssl                        the command that makes scripts/run's self-signed
#                                  certificate and the TLS tests' certificates
#   libhiredis-dev                 [cluster]: the Redis client (hiredis 0.14) and its
#                                  libevent adapter, on chatd's loop
#   redis-server                   the private Redis of scripts/redis, which scripts/run
#                                  --nodes starts for the cluster, and the one the cluster
#                                  tests start (tests/support); brings redis-cli. The
#                                  system service the package sets up is not used
#   haproxy                        the TCP proxy scripts/run --nodes puts in front of the
#                                  cluster's nodes (its system service is not used either)
#   libwslay-dev                   [web]: WebSocket (RFC 6455) frames, the library's
#                                  parser and close handshake under chatd's own I/O
#   libhttp-parser-dev             [web]: the HTTP request heads of the WebSocket handshake
#                                  and the static files (bookworm has no llhttp for C)
#   libmimalloc-dev                chatd's malloc (mimalloc 2.0): glibc's malloc and free
#                                  were a third of a private delivery's instructions
#                                  (docs/architecture.md, "The allocator")
#   dpkg-dev, file                 cpack's Debian packages (packaging/build-debs): their
#                                  Depends come from dpkg-shlibdeps, on the files that
#                                  `file` says are ELF
#   debootstrap                    the clean Debian 12 root scripts/test-packages installs
#                                  the .deb packages into
#   chromium                       the headless browser that the browser tests drive over
#                                  its DevTools protocol, and looking at the web client
#   firefox-esr                    the second browser of the browser tests, driven over
#                                  WebDriver BiDi (the web client must work in Firefox too)
#   inspircd                       the IRC server test_bench runs chatd-bench --target irc
#                                  against (and test_bench_peers, tools/bench-peers); its
#                                  system service is not used
# For tools/bench-peers only (installed by it, not by the build or the tests):
#   inspircd                       the IRC server (InspIRCd 3) chatd is measured against
#                                  side by side (also a test package, above)
#   redis-server                   (in the build list already) the Redis 7 whose pub/sub
#                                  is the other peer, on a private loopback port
# Not listed, as every Debian 12 has them (Essential, or Priority required): bash, dash,
# coreutils, sed, grep, findutils (xargs), util-linux (setsid in scripts/mariadb, setpriv in
# tests/db/test_mariadb_lockdown.sh), dpkg, apt, mawk (awk). mariadb-server brings
# mariadb-client (mariadb, mariadb-admin); gcc brings binutils (nm, in scripts/test-example).
CHATD_BUILD_PACKAGES=(cmake pkg-config gcc make libevent-dev libjansson-dev libinih-dev
    uthash-dev libmariadb-dev libsodium-dev mariadb-server check libsubunit-dev netcat-openbsd
    libedit-dev libssl-dev openssl libhiredis-dev redis-server haproxy libwslay-dev
    libhttp-parser-dev libmimalloc-dev)
CHATD_TEST_PACKAGES=(clang libclang-rt-14-dev clang-format git dpkg-dev file debootstrap
    chromium firefox-esr inspircd)
# valgrind: bench-peers --callgrind counts each server's instructions per delivery.
CHATD_BENCH_PACKAGES=(redis-server inspircd valgrind)

# ensure_packages PKG...: install what is missing (as root), or print the exact
# apt-get line and stop.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "chatd needs these Debian packages; install them as root with:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# alive PID: whether that process still runs. A zombie (it exited and its parent has not
# reaped it yet) does not: kill -0 would still find it.
alive() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# build DIR [cmake args...]: configure (once) and build into DIR.
build() {
    local dir=$1
    shift
    cmake -S "$CHATD_ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}
