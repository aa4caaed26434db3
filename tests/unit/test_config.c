/* test_config.c - the config file: defaults, values, and every kind of bad line
 * refused with file:line and the reason. */
#include "cidr.h"
#include "config.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char path[64];
static char err[1024];
static struct config cfg;

/* Write len bytes to a fresh temp file and load it; returns config_load's result. */
static int load_bytes(const char *text, size_t len)
{
    strcpy(path, "/tmp/chatd-test-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    err[0] = '\0';
    int rc = config_load(&cfg, path, err, sizeof(err));
    unlink(path);
    return rc;
}

static int load(const char *text)
{
    return load_bytes(text, strlen(text));
}

/* Assert the load fails with exactly "<path>:<line>: <reason>". */
static void assert_refused(const char *text, int line, const char *reason)
{
    ck_assert_int_eq(load(text), -1);
    char expected[1024];
    snprintf(expected, sizeof(expected), "%s:%d: %s", path, line, reason);
    ck_assert_str_eq(err, expected);
}

START_TEST(config_reads_values_and_defaults)
{
    ck_assert_int_eq(load("; comment\n[server]\nlisten = 127.0.0.1:9000\nlisten = [::1]:9001\n"
                          "max_connections = 5\n[log]\nlevel = debug\n[plugins]\n"
                          "enable = ping, good\ndir = /tmp/p\n[plugin.good]\nrepeat = 3\n"),
                     0);
    ck_assert_uint_eq(cfg.n_listeners, 2);
    ck_assert_str_eq(cfg.listeners[0].host, "127.0.0.1");
    ck_assert_str_eq(cfg.listeners[0].port, "9000");
    ck_assert_str_eq(cfg.listeners[1].host, "::1");
    ck_assert_int_eq(cfg.listeners[1].line, 4);
    ck_assert_int_eq(cfg.max_connections, 5);
    ck_assert_int_eq(cfg.log_level, 3);
    ck_assert_uint_eq(cfg.n_enabled, 2);
    ck_assert_str_eq(cfg.enabled[1], "good");
    ck_assert_str_eq(cfg.plugin_dir, "/tmp/p");
    ck_assert_uint_eq(cfg.n_plugin_entries, 1);
    ck_assert_str_eq(cfg.plugin_entries[0].plugin, "good");
    ck_assert_str_eq(cfg.plugin_entries[0].value, "3");
    ck_assert_int_eq(cfg.plugin_entries[0].line, 12);
    /* Untouched keys keep their defaults. */
    ck_assert_int_eq(cfg.idle_timeout_s, 300);
    ck_assert_int_eq(cfg.max_frame_bytes, 65536);
    ck_assert_int_eq(cfg.max_output_bytes, 1048576);
    ck_assert_int_eq(cfg.hook_timeout_ms, 10000);
    ck_assert_int_eq(cfg.output_pause_bytes, 32768);
    ck_assert_int_eq(cfg.max_pipelined, 16);
    ck_assert_int_eq(cfg.frame_timeout_s, 10);
    ck_assert_int_eq(cfg.login_timeout_s, 60);
    config_free(&cfg);
}
END_TEST

START_TEST(config_reads_the_admin_keys)
{
    ck_assert_int_eq(load("[admin]\nenable = yes\n"), 0);
    ck_assert_int_eq(cfg.admin_max_connections, 16);
    ck_assert_str_eq(cfg.admin_token_file, "");
    ck_assert_int_eq(cfg.admin_metrics_token, 0);
    config_free(&cfg);
    ck_assert_int_eq(load("[admin]\nmax_connections = 3\ntoken_file = /run/chatd/admin.token\n"
                          "metrics_token = yes\n"),
                     0);
    ck_assert_int_eq(cfg.admin_max_connections, 3);
    ck_assert_str_eq(cfg.admin_token_file, "/run/chatd/admin.token");
    ck_assert_int_eq(cfg.admin_metrics_token, 1);
    config_free(&cfg);
    assert_refused("[admin]\n\nmax_connections = 0\n", 3,
                   "[admin] max_connections: 0 is out of range [1, 10000]");
    assert_refused("[admin]\nmetrics_token = maybe\n", 2,
                   "[admin] metrics_token: 'maybe' is not a boolean (yes/no, true/false, on/off, "
                   "1/0)");
}
END_TEST

START_TEST(config_reads_the_web_keys)
{
    ck_assert_int_eq(load("[server]\nlisten = 127.0.0.1:1\n"), 0);
    ck_assert_int_eq(cfg.web.enable, 0);
    ck_assert_str_eq(cfg.web.listen, "127.0.0.1:8080");
    ck_assert_int_eq(cfg.web.tls, 0);
    ck_assert_str_eq(cfg.web.allowed_origins, "");
    ck_assert_str_eq(cfg.web.root, CHATD_DEFAULT_WEB_ROOT);
    ck_assert_int_eq(cfg.web.ping_interval_s, 30);
    ck_assert_int_eq(cfg.web.pong_timeout_s, 10);
    ck_assert_int_eq(cfg.web.request_timeout_s, 10);
    config_free(&cfg);
    ck_assert_int_eq(load("[web]\nenable = yes\nlisten = [::1]:8002\ntls = yes\n"
                          "allowed_origins = https://chat.example.org, http://localhost:8002\n"
                          "root = /srv/web\nping_interval = 5\npong_timeout = 2\n"
                          "request_timeout = 3\n"),
                     0);
    ck_assert_int_eq(cfg.web.enable, 1);
    ck_assert_str_eq(cfg.web.listen, "[::1]:8002");
    ck_assert_int_eq(cfg.web.tls, 1);
    ck_assert_str_eq(cfg.web.allowed_origins, "https://chat.example.org, http://localhost:8002");
    ck_assert_str_eq(cfg.web.root, "/srv/web");
    ck_assert_int_eq(cfg.web.ping_interval_s, 5);
    ck_assert_int_eq(cfg.web.pong_timeout_s, 2);
    ck_assert_int_eq(cfg.web.request_timeout_s, 3);
    config_free(&cfg);
    ck_assert_int_eq(load("[web]\nallowed_origins = *\n"), 0);
    config_free(&cfg);
    assert_refused("[web]\nlisten = 127.0.0.1:8002 tls\n", 2,
                   "[web] listen: '127.0.0.1:8002 tls': give the address only (TLS is the key "
                   "tls = yes)");
    assert_refused("[web]\n\nlisten = 8002\n", 3,
                   "[web] listen: '8002' is not address:port (use [addr]:port for IPv6)");
    assert_refused("[web]\nallowed_origins = https://a.example/app\n", 2,
                   "[web] allowed_origins: 'https://a.example/app' is not an origin "
                   "(http://host[:port], https://...) or *");
    assert_refused("[web]\nallowed_origins = a.example\n", 2,
                   "[web] allowed_origins: 'a.example' is not an origin (http://host[:port], "
                   "https://...) or *");
    assert_refused("[web]\npong_timeout = 0\n", 2,
                   "[web] pong_timeout: 0 is out of range [1, 3600]");
}
END_TEST

/* The own-origin list check the handshake uses: case-insensitive, "*" for any. */
START_TEST(config_matches_allowed_origins)
{
    int allowed = -1;
    ck_assert_int_eq(config_parse_origins("https://a.example, http://b:1", "HTTPS://A.EXAMPLE",
                                          &allowed, err, sizeof(err)),
                     0);
    ck_assert_int_eq(allowed, 1);
    ck_assert_int_eq(config_parse_origins("https://a.example", "https://a.example.evil", &allowed,
                                          err, sizeof(err)),
                     0);
    ck_assert_int_eq(allowed, 0);
    ck_assert_int_eq(
        config_parse_origins("https://a.example", "http://a.example", &allowed, err, sizeof(err)),
        0);
    ck_assert_int_eq(allowed, 0);
    ck_assert_int_eq(config_parse_origins("*", "null", &allowed, err, sizeof(err)), 0);
    ck_assert_int_eq(allowed, 1);
}
END_TEST

START_TEST(config_reads_the_cluster_keys)
{
    ck_assert_int_eq(load("[server]\nlisten = 127.0.0.1:1\n"), 0);
    ck_assert_int_eq(cfg.cluster.enable, 0);
    ck_assert_int_eq(config_valid_node_name(cfg.cluster.node), 1); /* from the host name */
    ck_assert_str_eq(cfg.cluster.redis, "127.0.0.1:6379");
    ck_assert_str_eq(cfg.cluster.redis_password_file, "");
    ck_assert_int_eq(cfg.cluster.lease_ms, 10000);
    ck_assert_int_eq(cfg.cluster.connect_timeout_ms, 2000);
    ck_assert_int_eq(cfg.cluster.gap_wait_ms, 200);
    ck_assert_int_eq(cfg.cluster.required, 0);
    config_free(&cfg);
    ck_assert_int_eq(load("[cluster]\nenable = yes\nnode = eu-1.a_B\nredis = unix:/run/r.sock\n"
                          "redis_password_file = /etc/chatd/redis.password\nlease_ms = 1000\n"
                          "connect_timeout_ms = 500\ngap_wait_ms = 50\nrequired = yes\n"),
                     0);
    ck_assert_int_eq(cfg.cluster.enable, 1);
    ck_assert_str_eq(cfg.cluster.node, "eu-1.a_B");
    ck_assert_str_eq(cfg.cluster.redis, "unix:/run/r.sock");
    ck_assert_str_eq(cfg.cluster.redis_password_file, "/etc/chatd/redis.password");
    ck_assert_int_eq(cfg.cluster.lease_ms, 1000);
    ck_assert_int_eq(cfg.cluster.connect_timeout_ms, 500);
    ck_assert_int_eq(cfg.cluster.gap_wait_ms, 50);
    ck_assert_int_eq(cfg.cluster.required, 1);
    config_free(&cfg);
    ck_assert_int_eq(load("[cluster]\nredis = [::1]:6380\n"), 0);
    config_free(&cfg);
    ck_assert_int_eq(load("[cluster]\nredis = localhost:6380\n"), 0);
    config_free(&cfg);

    struct config_redis r;
    ck_assert_int_eq(config_parse_redis("localhost:7", &r, err, sizeof(err)), 0);
    ck_assert_str_eq(r.host, "127.0.0.1");
    ck_assert_int_eq(r.port, 7);
    ck_assert_ptr_null(r.unix_path);
    config_redis_free(&r);
    ck_assert_int_eq(config_parse_redis("unix:/tmp/x.sock", &r, err, sizeof(err)), 0);
    ck_assert_str_eq(r.unix_path, "/tmp/x.sock");
    ck_assert_ptr_null(r.host);
    config_redis_free(&r);
}
END_TEST

START_TEST(config_refuses_bad_cluster_values)
{
    assert_refused("[cluster]\n\nnode = a b\n", 3,
                   "[cluster] node: 'a b' is not 1 to 32 of A-Z, a-z, 0-9, _, . and -");
    assert_refused("[cluster]\nnode = 123456789012345678901234567890123\n", 2,
                   "[cluster] node: '123456789012345678901234567890123' is not 1 to 32 of A-Z, "
                   "a-z, 0-9, _, . and -");
    assert_refused("[cluster]\nredis = redis.example.org:6379\n", 2,
                   "[cluster] redis: 'redis.example.org:6379': give a numeric address (or "
                   "localhost): a name would be looked up with a blocking call");
    assert_refused("[cluster]\nredis = unix:run/r.sock\n", 2,
                   "[cluster] redis: 'unix:run/r.sock': unix: needs an absolute path of at most "
                   "107 bytes");
    assert_refused("[cluster]\nredis = 127.0.0.1\n", 2,
                   "[cluster] redis: '127.0.0.1' is not address:port (use [addr]:port for IPv6)");
    assert_refused("[cluster]\nlease_ms = 999\n", 2,
                   "[cluster] lease_ms: 999 is out of range [1000, 3600000]");
    assert_refused("[cluster]\nrequired = maybe\n", 2,
                   "[cluster] required: 'maybe' is not a boolean (yes/no, true/false, on/off, "
                   "1/0)");
}
END_TEST

START_TEST(config_accepts_a_byte_order_mark_and_hash_comments)
{
    ck_assert_int_eq(load("\xEF\xBB\xBF# comment\n[server]\nlisten = 127.0.0.1:1\n"), 0);
    ck_assert_uint_eq(cfg.n_listeners, 1);
    config_free(&cfg);
}
END_TEST

START_TEST(config_refuses_unknown_section)
{
    assert_refused("[server]\nlisten = 127.0.0.1:1\n[srever]\nx = 1\n", 3,
                   "unknown section [srever] (known: [server], [log], [plugins], "
                   "[database], [admin], [tls], [limits], [messages], [cluster], [web], "
                   "[plugin.<name>])");
}
END_TEST

START_TEST(config_refuses_unknown_section_without_keys)
{
    assert_refused("[server]\n\n[extra]\n", 3,
                   "unknown section [extra] (known: [server], [log], [plugins], "
                   "[database], [admin], [tls], [limits], [messages], [cluster], [web], "
                   "[plugin.<name>])");
}
END_TEST

START_TEST(config_refuses_unknown_key)
{
    assert_refused("[server]\nlisen = 127.0.0.1:1\n", 2, "unknown key 'lisen' in [server]");
}
END_TEST

START_TEST(config_refuses_non_integer)
{
    assert_refused("[server]\nmax_connections = lots\n", 2,
                   "[server] max_connections: 'lots' is not an integer");
}
END_TEST

START_TEST(config_refuses_integer_out_of_range)
{
    assert_refused("[server]\nidle_timeout = 5\nmax_frame_bytes = 10\n", 3,
                   "[server] max_frame_bytes: 10 is out of range [256, 16777216]");
}
END_TEST

START_TEST(config_reads_hook_timeout_within_its_range)
{
    ck_assert_int_eq(load("[server]\nhook_timeout_ms = 10\n"), 0);
    ck_assert_int_eq(cfg.hook_timeout_ms, 10);
    config_free(&cfg);
    assert_refused("[server]\nhook_timeout_ms = 9\n", 2,
                   "[server] hook_timeout_ms: 9 is out of range [10, 600000]");
    assert_refused("[server]\nhook_timeout_ms = 600001\n", 2,
                   "[server] hook_timeout_ms: 600001 is out of range [10, 600000]");
}
END_TEST

START_TEST(config_reads_memory_and_deadline_keys_within_their_ranges)
{
    ck_assert_int_eq(
        load("[server]\noutput_pause_bytes = 1024\nframe_timeout = 0\nlogin_timeout = 86400\n"), 0);
    ck_assert_int_eq(cfg.output_pause_bytes, 1024);
    ck_assert_int_eq(cfg.frame_timeout_s, 0);
    ck_assert_int_eq(cfg.login_timeout_s, 86400);
    config_free(&cfg);
    assert_refused("[server]\nmax_pipelined = 0\n", 2,
                   "[server] max_pipelined: 0 is out of range [1, 1024]");
    assert_refused("[server]\noutput_pause_bytes = 1023\n", 2,
                   "[server] output_pause_bytes: 1023 is out of range [1024, 1073741824]");
    assert_refused("[server]\n\nframe_timeout = 3601\n", 3,
                   "[server] frame_timeout: 3601 is out of range [0, 3600]");
    assert_refused("[server]\nlogin_timeout = -1\n", 2,
                   "[server] login_timeout: -1 is out of range [0, 86400]");
}
END_TEST

START_TEST(config_reads_limits_with_defaults_on)
{
    ck_assert_int_eq(load("[limits]\nlogin_per_address = 5/2m\nrequests_per_session = off\n"
                          "connections_per_address = 100/1h\nmax_connections_per_address = 0\n"),
                     0);
    ck_assert_int_eq(cfg.limits.login_per_address.burst, 5);
    ck_assert_int_eq(cfg.limits.login_per_address.period_ms, 120000);
    ck_assert_int_eq(cfg.limits.requests_per_session.burst, 0);
    ck_assert_int_eq(cfg.limits.connections_per_address.period_ms, 3600000);
    ck_assert_int_eq(cfg.limits.max_connections_per_address, 0);
    /* Untouched keys keep their defaults: on. */
    ck_assert_int_eq(cfg.limits.failed_login_per_name.burst, 10);
    ck_assert_int_eq(cfg.limits.failed_login_per_name.period_ms, 900000);
    ck_assert_int_eq(cfg.limits.max_tracked, 50000);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(cfg.limits.login_per_address.burst, 20);
    ck_assert_int_eq(cfg.limits.login_per_address.period_ms, 60000);
    ck_assert_int_eq(cfg.limits.requests_per_session.burst, 200);
    ck_assert_int_eq(cfg.limits.connections_per_address.burst, 60);
    ck_assert_int_eq(cfg.limits.max_connections_per_address, 100);
    config_free(&cfg);
}
END_TEST

START_TEST(config_reads_messages_retention_and_devices)
{
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(cfg.messages.retention_days, 365);
    ck_assert_int_eq(cfg.messages.retention_count, 0);
    ck_assert_int_eq(cfg.messages.device_forget_days, 90);
    ck_assert_int_eq(cfg.messages.max_devices, 32);
    config_free(&cfg);
    ck_assert_int_eq(load("[messages]\nretention_days = 1\nretention_count = 500\n"
                          "device_forget_days = 7\nmax_devices = 1\n"),
                     0);
    ck_assert_int_eq(cfg.messages.retention_days, 1);
    ck_assert_int_eq(cfg.messages.retention_count, 500);
    ck_assert_int_eq(cfg.messages.device_forget_days, 7);
    ck_assert_int_eq(cfg.messages.max_devices, 1);
    config_free(&cfg);
    assert_refused("[messages]\nretention_days = 0\n", 2,
                   "[messages] retention_days: 0 is out of range [1, 36500]");
    assert_refused("[messages]\nretention_count = -1\n", 2,
                   "[messages] retention_count: -1 is out of range [0, 1000000000]");
    assert_refused("[server]\n[messages]\ndevice_forget_days = 0\n", 3,
                   "[messages] device_forget_days: 0 is out of range [1, 36500]");
    assert_refused("[messages]\nmax_devices = 0\n", 2,
                   "[messages] max_devices: 0 is out of range [1, 1000]");
}
END_TEST

START_TEST(config_refuses_bad_rates)
{
    const char *const bad[] = {"20",    "20/",    "20/60", "20/60x",     "0/60s",   "-1/60s",
                               "20/0s", "20/25h", "x/60s", "1000001/1s", "20/60s/", "on"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], reason[256];
        snprintf(text, sizeof(text), "[server]\n[limits]\nlogin_per_address = %s\n", bad[i]);
        ck_assert_int_eq(load(text), -1);
        snprintf(reason, sizeof(reason), "%s:3: [limits] login_per_address: ", path);
        ck_assert_msg(strncmp(err, reason, strlen(reason)) == 0, "%s: %s", bad[i], err);
    }
    assert_refused("[limits]\nmax_tracked = 15\n", 2,
                   "[limits] max_tracked: 15 is out of range [16, 10000000]");
}
END_TEST

START_TEST(config_reads_the_cpu_queue_within_its_range)
{
    ck_assert_int_eq(load("[server]\ncpu_workers = 3\ncpu_queue_max = 1\n"), 0);
    ck_assert_int_eq(cfg.cpu_workers, 3);
    ck_assert_int_eq(cfg.cpu_queue_max, 1);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(cfg.cpu_workers, 0);
    ck_assert_int_eq(cfg.cpu_queue_max, 64);
    config_free(&cfg);
    assert_refused("[server]\ncpu_workers = 257\n", 2,
                   "[server] cpu_workers: 257 is out of range [0, 256]");
    assert_refused("[server]\n\ncpu_queue_max = 0\n", 3,
                   "[server] cpu_queue_max: 0 is out of range [1, 1000000]");
}
END_TEST

START_TEST(config_reads_io_threads_as_a_number_or_auto)
{
    ck_assert_int_eq(load("[server]\nio_threads = 3\n"), 0);
    ck_assert_int_eq(cfg.io_threads, 3);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\nio_threads = 0\n"), 0);
    ck_assert_int_eq(cfg.io_threads, 0);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\nio_threads = auto\n"), 0);
    ck_assert_int_eq(cfg.io_threads, -1);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(cfg.io_threads, -1);
    config_free(&cfg);
    assert_refused("[server]\nio_threads = 65\n", 2,
                   "[server] io_threads: '65' is not auto or a number from 0 to 64");
    assert_refused("[server]\n\nio_threads = many\n", 3,
                   "[server] io_threads: 'many' is not auto or a number from 0 to 64");
}
END_TEST

START_TEST(config_reads_the_commit_batch_size_within_its_range)
{
    ck_assert_int_eq(load("[messages]\nbatch_max = 250\n"), 0);
    ck_assert_int_eq(cfg.messages.batch_max, 250);
    config_free(&cfg);
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(cfg.messages.batch_max, 1000);
    config_free(&cfg);
    assert_refused("[messages]\nbatch_max = 0\n", 2,
                   "[messages] batch_max: 0 is out of range [1, 100000]");
    assert_refused("[messages]\n\nbatch_max = 100001\n", 3,
                   "[messages] batch_max: 100001 is out of range [1, 100000]");
}
END_TEST

START_TEST(config_refuses_bad_boolean)
{
    assert_refused("[log]\nsyslog = maybe\n", 2,
                   "[log] syslog: 'maybe' is not a boolean (yes/no, true/false, on/off, 1/0)");
}
END_TEST

START_TEST(config_refuses_bad_log_level)
{
    assert_refused("[log]\nlevel = loud\n", 2,
                   "[log] level: 'loud' is not one of error, warn, info, debug");
}
END_TEST

START_TEST(config_refuses_listen_without_port)
{
    assert_refused("[server]\nlisten = localhost\n", 2,
                   "[server] listen: 'localhost' is not address:port (use [addr]:port for "
                   "IPv6)");
}
END_TEST

START_TEST(config_refuses_listen_port_out_of_range)
{
    assert_refused("[server]\nlisten = 127.0.0.1:70000\n", 2,
                   "[server] listen: port '70000' must be a number from 1 to 65535");
}
END_TEST

START_TEST(config_refuses_unbracketed_ipv6)
{
    assert_refused("[server]\nlisten = ::1:80\n", 2,
                   "[server] listen: '::1:80' is not address:port (use [addr]:port for IPv6)");
}
END_TEST

START_TEST(config_refuses_duplicate_key)
{
    assert_refused("[server]\nidle_timeout = 5\nidle_timeout = 6\n", 3,
                   "[server] idle_timeout is set twice");
}
END_TEST

START_TEST(config_refuses_duplicate_plugin_key)
{
    assert_refused("[plugins]\nenable = good\n[plugin.good]\nrepeat = 1\nrepeat = 2\n", 5,
                   "[plugin.good] repeat is set twice (first on line 4)");
}
END_TEST

START_TEST(config_refuses_key_before_section)
{
    assert_refused("listen = 127.0.0.1:1\n", 1, "key 'listen' comes before any [section]");
}
END_TEST

START_TEST(config_refuses_syntax_error)
{
    assert_refused("[server]\nthis line has no equals sign\n", 2,
                   "syntax error (expected [section], key = value or a comment)");
}
END_TEST

START_TEST(config_refuses_unclosed_section)
{
    assert_refused("[server\nlisten = 127.0.0.1:1\n", 1,
                   "syntax error (expected [section], key = value or a comment)");
}
END_TEST

START_TEST(config_refuses_overlong_line)
{
    char text[512];
    snprintf(text, sizeof(text), "[log]\nsyslog_ident = %0300d\nlevel = info\n", 7);
    assert_refused(text, 2, "line is longer than 198 bytes");
}
END_TEST

/* Found by fuzz_config (tests/fuzz): after a NUL byte, the reader's length check saw a
 * short line, so the tail of a long line was read as a line of its own - here a
 * comment set max_connections - and errors named lines past the end of the file. */
START_TEST(config_refuses_a_nul_byte)
{
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof(text), "[server]\n; a comment");
    text[n++] = '\0';
    memset(text + n, 'x', 199 - (n - strlen("[server]\n")));
    n += 199 - (n - strlen("[server]\n"));
    n += (size_t)snprintf(text + n, sizeof(text) - n, "max_connections = 5\n[log]\nlevel = info\n");
    ck_assert_int_eq(load_bytes(text, n), -1);
    char expected[1024];
    snprintf(expected, sizeof(expected), "%s:2: a NUL byte (the file is not text)", path);
    ck_assert_str_eq(err, expected);
}
END_TEST

/* config_build of `text` with the fixture folder as the plugin folder. */
static int build_with_fixtures(const char *text)
{
    char file[] = "/tmp/chatd-test-build-XXXXXX";
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const struct config_source src = {.path = file, .plugin_dir = CHATD_FIXTURE_DIR};
    int rc = config_build(&cfg, &src, err, sizeof(err));
    unlink(file);
    if (rc == 0)
        config_free(&cfg);
    return rc;
}

START_TEST(config_keeps_sections_of_plugins_left_out_but_refuses_unknown_ones)
{
    /* Switching a plugin off is one edit of the enable line: its section may stay. */
    ck_assert_int_eq(build_with_fixtures("[plugins]\nenable = ping\n[plugin.good]\nrepeat = 1\n"),
                     0);
    /* A section naming no plugin of the folder is a typo. */
    ck_assert_int_eq(build_with_fixtures("[plugins]\nenable = ping\n[plugin.goood]\nrepeat = 1\n"),
                     -1);
    ck_assert_msg(strstr(err, ":4: [plugin.goood] configures a plugin that is neither in "
                              "[plugins] enable nor in ") != NULL,
                  "%s", err);
}
END_TEST

START_TEST(config_refuses_plugin_enabled_twice)
{
    assert_refused("[plugins]\nenable = ping, ping\n", 2, "plugin 'ping' is enabled twice");
}
END_TEST

START_TEST(config_refuses_bad_plugin_name)
{
    assert_refused("[plugins]\nenable = Ping\n", 2,
                   "plugin name 'Ping' is invalid (use a-z, 0-9 and _, 1 to 32 bytes)");
}
END_TEST

START_TEST(config_refuses_authenticator_not_enabled)
{
    assert_refused("[plugins]\nenable = ping\nauthenticator = login\n", 3,
                   "authenticator 'login' is not in [plugins] enable");
}
END_TEST

START_TEST(config_reports_missing_file)
{
    ck_assert_int_eq(config_load(&cfg, "/nonexistent/chatd.conf", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/chatd.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(config_listen_override_replaces_listeners)
{
    ck_assert_int_eq(load("[server]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n"), 0);
    ck_assert_int_eq(config_set_listen(&cfg, "[::1]:8000", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.n_listeners, 1);
    ck_assert_str_eq(cfg.listeners[0].host, "::1");
    ck_assert_str_eq(cfg.listeners[0].port, "8000");
    ck_assert_int_eq(config_set_listen(&cfg, "nope", err, sizeof(err)), -1);
    config_free(&cfg);
}
END_TEST

START_TEST(config_reads_tls_listeners_and_section)
{
    ck_assert_int_eq(load("[server]\nlisten = 127.0.0.1:1\nlisten = [::1]:2   tls\n[tls]\n"
                          "certificate = /c.pem\nkey = /k.pem\nmin_version = 1.3\n"),
                     0);
    ck_assert_int_eq(cfg.listeners[0].tls, 0);
    ck_assert_int_eq(cfg.listeners[1].tls, 1);
    ck_assert_str_eq(cfg.listeners[1].host, "::1");
    ck_assert_str_eq(cfg.tls.certificate, "/c.pem");
    ck_assert_int_eq(cfg.tls.min_version, 13);
    ck_assert_int_eq(cfg.tls.handshake_timeout_s, 10);
    ck_assert_ptr_nonnull(strstr(cfg.tls.ciphers, "ECDHE"));
    ck_assert_int_eq(config_has_tls_listener(&cfg), 1);
    /* --listen takes several, each maybe marked. */
    ck_assert_int_eq(
        config_set_listen(&cfg, "127.0.0.1:8000, 127.0.0.1:8001 tls", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.n_listeners, 2);
    ck_assert_int_eq(cfg.listeners[0].tls, 0);
    ck_assert_str_eq(cfg.listeners[1].port, "8001");
    ck_assert_int_eq(cfg.listeners[1].tls, 1);
    ck_assert_int_eq(config_set_listen(&cfg, "127.0.0.1:8000 ssl", err, sizeof(err)), -1);
    ck_assert_uint_eq(cfg.n_listeners, 2);
    config_free(&cfg);
    ck_assert_int_eq(load("[tls]\n"), 0);
    ck_assert_int_eq(cfg.tls.min_version, 12);
    config_free(&cfg);
}
END_TEST

START_TEST(config_refuses_bad_tls_values)
{
    assert_refused("[server]\nlisten = 127.0.0.1:1 ssl\n", 2,
                   "[server] listen: 'ssl' after the address: the words allowed there are tls and "
                   "direct, once each");
    assert_refused("[tls]\nmin_version = 1.1\n", 2, "[tls] min_version: '1.1' is not 1.2 or 1.3");
    assert_refused("[tls]\nhandshake_timeout = 0\n", 2,
                   "[tls] handshake_timeout: 0 is out of range [1, 600]");
}
END_TEST

START_TEST(config_reads_the_proxy_protocol_keys)
{
    ck_assert_int_eq(load("[server]\nlisten = 127.0.0.1:1\n"), 0);
    ck_assert_int_eq(cfg.proxy_protocol, 0);
    ck_assert_uint_eq(cfg.n_proxy_from, 2);
    ck_assert_int_eq(cfg.proxy_from[0].family, AF_INET);
    ck_assert_uint_eq(cfg.proxy_from[0].bits, 32);
    ck_assert_int_eq(cfg.proxy_from[1].family, AF_INET6);
    ck_assert_uint_eq(cfg.proxy_from[1].bits, 128);
    config_free(&cfg);
    const char *words[] = {"off", "v1", "v2", "any"};
    for (int i = 0; i < 4; i++) {
        char text[200];
        snprintf(text, sizeof(text),
                 "[server]\nproxy_protocol = %s\nproxy_from = 10.0.0.0/8, 192.0.2.1 "
                 "2001:db8::/32\nlisten = 127.0.0.1:1 tls direct\nlisten = 127.0.0.1:2 direct\n"
                 "listen = 127.0.0.1:3\n",
                 words[i]);
        ck_assert_int_eq(load(text), 0);
        ck_assert_int_eq(cfg.proxy_protocol, i);
        ck_assert_uint_eq(cfg.n_proxy_from, 3);
        ck_assert_uint_eq(cfg.proxy_from[0].bits, 8);
        ck_assert_uint_eq(cfg.proxy_from[1].bits, 32);
        ck_assert_uint_eq(cfg.proxy_from[2].bits, 32);
        ck_assert_int_eq(cfg.listeners[0].tls, 1);
        ck_assert_int_eq(cfg.listeners[0].direct, 1);
        ck_assert_int_eq(cfg.listeners[1].tls, 0);
        ck_assert_int_eq(cfg.listeners[1].direct, 1);
        ck_assert_int_eq(cfg.listeners[2].direct, 0);
        config_free(&cfg);
    }
    ck_assert_int_eq(load("[server]\n"), 0);
    ck_assert_int_eq(config_override(&cfg, "server.proxy_from=::1", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.n_proxy_from, 1);
    ck_assert_int_eq(config_override(&cfg, "server.proxy_from=::1/200", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--set server.proxy_from=::1/200: [server] proxy_from: '::1/200' is not "
                          "an address or address/bits");
    ck_assert_uint_eq(cfg.n_proxy_from, 1);
    config_free(&cfg);
}
END_TEST

START_TEST(config_refuses_bad_proxy_protocol_values)
{
    assert_refused("[server]\nproxy_protocol = yes\n", 2,
                   "[server] proxy_protocol: 'yes' is not one of off, v1, v2, any");
    assert_refused("[server]\n\nproxy_from = 127.0.0.1, 10.0.0.0/33\n", 3,
                   "[server] proxy_from: '10.0.0.0/33' is not an address or address/bits");
    assert_refused("[server]\nproxy_from = localhost\n", 2,
                   "[server] proxy_from: 'localhost' is not an address or address/bits");
    assert_refused("[server]\nproxy_from = ,\n", 2,
                   "[server] proxy_from: no address (the default is 127.0.0.1/32, ::1/128)");
    assert_refused("[server]\nlisten = 127.0.0.1:1 direct direct\n", 2,
                   "[server] listen: 'direct' after the address: the words allowed there are tls "
                   "and direct, once each");
}
END_TEST

/* A TLS listener without its certificate and key stops chatd before it starts. */
START_TEST(config_build_refuses_tls_listener_without_certificate)
{
    ck_assert_int_eq(
        build_with_fixtures("[server]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2 tls\n"
                            "[tls]\ncertificate = /c.pem\n"),
        -1);
    ck_assert_ptr_nonnull(strstr(err, ": the TLS listener 127.0.0.1:2 (line 3) needs [tls] "
                                      "certificate and [tls] key"));
    ck_assert_int_eq(build_with_fixtures("[server]\nlisten = 127.0.0.1:2 tls\n"
                                         "[tls]\ncertificate = /c.pem\nkey = /k.pem\n"),
                     0);
}
END_TEST

START_TEST(config_reports_first_of_several_errors)
{
    assert_refused("[server]\nmax_connections = x\n[bogus]\n", 2,
                   "[server] max_connections: 'x' is not an integer");
}
END_TEST

/* What a reload rebuilds: the file again, with the command line's overrides on top. */
START_TEST(config_build_keeps_command_line_overrides)
{
    strcpy(path, "/tmp/chatd-test-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "[server]\nlisten = 127.0.0.1:1\nmax_connections = 5\n[log]\nlevel = warn\n"
                       "[plugins]\ndir = /nowhere\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *const sets[] = {"server.max_connections=7"};
    const struct config_source src = {.path = path,
                                      .sets = sets,
                                      .n_sets = 1,
                                      .listen = "127.0.0.1:2",
                                      .plugin_dir = "/plugins",
                                      .log_level = "debug"};
    ck_assert_int_eq(config_build(&cfg, &src, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.max_connections, 7);
    ck_assert_uint_eq(cfg.n_listeners, 1);
    ck_assert_str_eq(cfg.listeners[0].port, "2");
    ck_assert_str_eq(cfg.plugin_dir, "/plugins");
    ck_assert_int_eq(cfg.log_level, 3);
    config_free(&cfg);

    const char *const bad[] = {"server.max_connection=7"};
    const struct config_source bad_src = {.path = path, .sets = bad, .n_sets = 1};
    ck_assert_int_eq(config_build(&cfg, &bad_src, err, sizeof(err)), -2);
    unlink(path);
    const struct config_source gone = {.path = path};
    ck_assert_int_eq(config_build(&cfg, &gone, err, sizeof(err)), -1);
}
END_TEST

START_TEST(installed_paths_are_found_beside_the_executable)
{
    /* This test program lives in tests/unit/ of the build tree. */
    char *self = config_installed_path("test_config");
    ck_assert_ptr_nonnull(self);
    char *up = config_installed_path("../unit/test_config");
    ck_assert_ptr_nonnull(up);
    ck_assert_str_eq(self, up);
    ck_assert_ptr_nonnull(strstr(self, "/tests/unit/test_config"));
    ck_assert_ptr_null(strstr(up, ".."));
    ck_assert_ptr_null(config_installed_path("../no/such/thing"));
    free(self);
    free(up);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, config_reads_values_and_defaults);
    tcase_add_test(tc, config_reads_the_admin_keys);
    tcase_add_test(tc, config_reads_the_web_keys);
    tcase_add_test(tc, config_matches_allowed_origins);
    tcase_add_test(tc, config_accepts_a_byte_order_mark_and_hash_comments);
    tcase_add_test(tc, config_refuses_unknown_section);
    tcase_add_test(tc, config_refuses_unknown_section_without_keys);
    tcase_add_test(tc, config_refuses_unknown_key);
    tcase_add_test(tc, config_refuses_non_integer);
    tcase_add_test(tc, config_refuses_integer_out_of_range);
    tcase_add_test(tc, config_reads_hook_timeout_within_its_range);
    tcase_add_test(tc, config_reads_memory_and_deadline_keys_within_their_ranges);
    tcase_add_test(tc, config_reads_limits_with_defaults_on);
    tcase_add_test(tc, config_refuses_bad_rates);
    tcase_add_test(tc, config_reads_the_cpu_queue_within_its_range);
    tcase_add_test(tc, config_reads_io_threads_as_a_number_or_auto);
    tcase_add_test(tc, config_refuses_bad_boolean);
    tcase_add_test(tc, config_refuses_bad_log_level);
    tcase_add_test(tc, config_refuses_listen_without_port);
    tcase_add_test(tc, config_refuses_listen_port_out_of_range);
    tcase_add_test(tc, config_refuses_unbracketed_ipv6);
    tcase_add_test(tc, config_refuses_duplicate_key);
    tcase_add_test(tc, config_refuses_duplicate_plugin_key);
    tcase_add_test(tc, config_refuses_key_before_section);
    tcase_add_test(tc, config_refuses_syntax_error);
    tcase_add_test(tc, config_refuses_unclosed_section);
    tcase_add_test(tc, config_refuses_overlong_line);
    tcase_add_test(tc, config_refuses_a_nul_byte);
    tcase_add_test(tc, config_keeps_sections_of_plugins_left_out_but_refuses_unknown_ones);
    tcase_add_test(tc, config_refuses_plugin_enabled_twice);
    tcase_add_test(tc, config_build_keeps_command_line_overrides);
    tcase_add_test(tc, config_reads_the_cluster_keys);
    tcase_add_test(tc, config_refuses_bad_cluster_values);
    tcase_add_test(tc, config_refuses_bad_plugin_name);
    tcase_add_test(tc, config_refuses_authenticator_not_enabled);
    tcase_add_test(tc, config_reports_missing_file);
    tcase_add_test(tc, config_listen_override_replaces_listeners);
    tcase_add_test(tc, config_reports_first_of_several_errors);
    tcase_add_test(tc, config_reads_tls_listeners_and_section);
    tcase_add_test(tc, config_refuses_bad_tls_values);
    tcase_add_test(tc, config_reads_the_proxy_protocol_keys);
    tcase_add_test(tc, config_refuses_bad_proxy_protocol_values);
    tcase_add_test(tc, config_build_refuses_tls_listener_without_certificate);
    tcase_add_test(tc, installed_paths_are_found_beside_the_executable);
    tcase_add_test(tc, config_reads_messages_retention_and_devices);
    tcase_add_test(tc, config_reads_the_commit_batch_size_within_its_range);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(config_suite());
}
