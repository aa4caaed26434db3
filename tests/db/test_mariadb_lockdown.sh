#!/usr/bin/env bash
# test_mariadb_lockdown.sh - the private MariaDB of scripts/mariadb (the test one, in
# CHATD_TEST_DB_DIR), tried by an unprivileged user (nobody) and by chatd's account: nobody
# reaches neither the socket nor the data; MariaDB's root needs the operating-system
# root even through a socket nobody can reach; `chatd` has its own database only; no TCP.
# Run as root (to act as nobody); skipped (77) otherwise.
set -uo pipefail
dir=${CHATD_TEST_DB_DIR:?run with scripts/test, which starts the test MariaDB}
socket=$dir/mysqld.sock
if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: acting as another user needs root"
    exit 77
fi
failed=0
password=$(cat "$dir/chatd.password")
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
sql() { # sql SOCKET USER [PASSWORD] -- statement on stdin
    local socket=$1 user=$2
    shift 2
    mariadb --no-defaults --connect-timeout=5 --socket="$socket" -u"$user" "$@"
}
refused() { # refused WHAT COMMAND...: the command must fail
    local what=$1
    shift
    if "$@" </dev/null >/dev/null 2>&1; then
        echo "FAIL: $what succeeded"
        failed=1
    else
        echo "ok: $what is refused"
    fi
}
works() { # works WHAT COMMAND...: the command must succeed (the checks above mean something)
    local what=$1
    shift
    if "$@" </dev/null >/dev/null 2>&1; then
        echo "ok: $what works"
    else
        echo "FAIL: $what failed"
        failed=1
    fi
}

mode_is() { [ "$(stat -c %a "$1")" = "$2" ]; }
works "$dir at mode 700" mode_is "$dir" 700
works "$dir/data at mode 700" mode_is "$dir/data" 700
works "chatd.password at mode 600" mode_is "$dir/chatd.password" 600

refused "nobody connecting as root" as_nobody mariadb --no-defaults --socket="$socket" -uroot -e 'SELECT 1'
refused "nobody connecting as chatd with its password" \
    as_nobody mariadb --no-defaults --socket="$socket" -uchatd -p"$password" -e 'SELECT 1'
refused "nobody listing the data folder" as_nobody ls "$dir/data"
refused "nobody reading the mysql tables" as_nobody cat "$dir/data/mysql/global_priv.MAD"
refused "nobody reading chatd.password" as_nobody cat "$dir/chatd.password"

# The socket, linked where nobody can reach it: root still needs the system's root.
open_dir=$(mktemp -d /tmp/chatd-lockdown.XXXXXX)
trap 'rm -rf "$open_dir"' EXIT
chmod 755 "$open_dir"
ln "$socket" "$open_dir/mysqld.sock"
works "nobody reaching the linked socket as chatd" \
    as_nobody mariadb --no-defaults --socket="$open_dir/mysqld.sock" -uchatd -p"$password" -e 'SELECT 1'
refused "nobody connecting as root through the linked socket" \
    as_nobody mariadb --no-defaults --socket="$open_dir/mysqld.sock" -uroot -e 'SELECT 1'
refused "nobody connecting as root with an empty password" \
    as_nobody mariadb --no-defaults --socket="$open_dir/mysqld.sock" -uroot --password= -e 'SELECT 1'

works "chatd using its own database" sql "$socket" chatd -p"$password" chatd -e 'SELECT 1'
refused "chatd creating a database" sql "$socket" chatd -p"$password" -e 'CREATE DATABASE chatd_lockdown_test'
refused "chatd reading mysql.user" sql "$socket" chatd -p"$password" -e 'SELECT * FROM mysql.user'
refused "chatd reading mysql.global_priv" sql "$socket" chatd -p"$password" -e 'SELECT * FROM mysql.global_priv'
networking=$(sql "$socket" root -N -e 'SELECT @@skip_networking')
works "no TCP (skip_networking = $networking)" test "$networking" = 1
stale=$(sql "$socket" root -N -e "SELECT COUNT(*) FROM mysql.user WHERE User = '' OR (User = 'root' AND Host <> 'localhost')")
works "no anonymous user and no root from elsewhere ($stale)" test "$stale" = 0

[ "$failed" -eq 0 ] && echo "the private MariaDB is locked down"
exit "$failed"
