/* test_web_chat.c - the web client (web/) in real browsers: headless Chromium driven
 * over its DevTools protocol (tests/support/cdp.c) and headless Firefox over WebDriver
 * BiDi (tests/support/bidi.c), each scenario in each, against a real chatd serving the
 * page on its [web] listener and a real MariaDB. Two browser users and one TCP user
 * chat privately and in a group; history pages back when scrolled up; a lost connection
 * resumes without losing or repeating a message. Screenshots go to CHATD_SCREENSHOT_DIR. */
#include "browser.h"
#include "chat_suite.h"
#include "chatd_proc.h"
#include "client.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WAIT_MS    15000
#define WEB_PASSWD "web pass 1"

/* ---- the browser side ---- */

/* The browser each test runs in: its loop index. */
static enum browser_kind kind_of(int loop_index)
{
    return (enum browser_kind)loop_index;
}

static struct browser_page *open_client(enum browser_kind kind, struct browser **browser)
{
    *browser = browser_launch(kind);
    ck_assert_msg(*browser != NULL, "%s did not start", browser_name(kind));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", chat_proc()->web_port);
    struct browser_page *p = browser_open(*browser, url);
    ck_assert_msg(p != NULL, "cannot open %s", url);
    return p;
}

/* Run the JavaScript built like printf (its value is dropped); with `until`, wait until
 * it is truthy instead. */
__attribute__((format(printf, 3, 4))) static void js_at(struct browser_page *p, int until,
                                                        const char *fmt, ...)
{
    char expr[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expr, sizeof(expr), fmt, ap);
    va_end(ap);
    if (until) {
        ck_assert_msg(browser_wait(p, expr, WAIT_MS) == 0, "never true: %s", expr);
        return;
    }
    json_t *v = browser_eval(p, expr);
    ck_assert_msg(v != NULL, "failed: %s", expr);
    json_decref(v);
}
#define js(p, ...)       js_at(p, 0, __VA_ARGS__)
#define wait_for(p, ...) js_at(p, 1, __VA_ARGS__)

static char *text_of(struct browser_page *p, const char *expr)
{
    char *s = browser_eval_string(p, expr);
    ck_assert_msg(s != NULL, "failed: %s", expr);
    return s;
}

static void register_in_page(struct browser_page *p, const char *user)
{
    wait_for(p, "document.getElementById('login-form').user === document.activeElement");
    js(p, "document.getElementById('login-switch').click()");
    /* The keyboard, as a person would: name, Tab, password, Tab, password, Enter. */
    ck_assert_int_eq(browser_type(p, user), 0);
    ck_assert_int_eq(browser_key(p, "Tab"), 0);
    ck_assert_int_eq(browser_type(p, WEB_PASSWD), 0);
    ck_assert_int_eq(browser_key(p, "Tab"), 0);
    ck_assert_int_eq(browser_type(p, WEB_PASSWD), 0);
    ck_assert_int_eq(browser_key(p, "Enter"), 0);
    wait_for(p, "document.getElementById('me').textContent === '%s'", user);
    wait_for(p, "document.getElementById('conn-state').textContent === 'connected'");
}

/* The sidebar's button of a friend or group. */
#define CONV_BUTTON                                                                                \
    "[...document.querySelectorAll('.conv')].find((b) => [...b.children].some((s) => "             \
    "!s.className && s.textContent === '%s'))"

static void open_conversation(struct browser_page *p, const char *name)
{
    wait_for(p, CONV_BUTTON, name);
    js(p, CONV_BUTTON ".click()", name);
    wait_for(p, "document.activeElement.id === 'text'");
}

static void submit_form(struct browser_page *p, const char *form, const char *value,
                        const char *button)
{
    js(p,
       "(() => { const f = document.getElementById('%s'); f.name.value = '%s';"
       " f.requestSubmit(f.querySelector('%s')); })()",
       form, value, button);
}

/* Type a message into the composer and press Enter. */
static void say(struct browser_page *p, const char *text)
{
    ck_assert_int_eq(browser_type(p, text), 0);
    ck_assert_int_eq(browser_key(p, "Enter"), 0);
}

#define MESSAGES     "document.querySelectorAll('#message-list .msg')"
#define LAST_MESSAGE "document.querySelector('#message-list .msg:last-child')"
/* A function of a text: the message with that text. */
#define MESSAGE_TEXT                                                                               \
    "((text) => [...document.querySelectorAll('#message-list .text')].find((t) =>"                 \
    " t.textContent === text))"

static void wait_last_text(struct browser_page *p, const char *text)
{
    wait_for(p, LAST_MESSAGE "?.querySelector('.text').textContent === '%s'", text);
}

/* Saved as CHATD_SCREENSHOT_DIR/BROWSER-NAME. */
static void screenshot(enum browser_kind kind, struct browser_page *p, const char *name, int width,
                       int height, int mobile)
{
    mkdir(CHATD_SCREENSHOT_DIR, 0755);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-%s", CHATD_SCREENSHOT_DIR, browser_name(kind), name);
    ck_assert_int_eq(browser_viewport(p, width, height, mobile), 0);
    ck_assert_int_eq(browser_screenshot(p, path), 0);
}

/* ---- the TCP side: replies are found among pushes ---- */

static json_t *tcp_call(struct test_client *c, const char *request)
{
    ck_assert_int_eq(test_client_send_str(c, request), 0);
    for (;;) {
        json_t *m = test_client_read_json(c, WAIT_MS);
        ck_assert_msg(m != NULL, "no reply to %s", request);
        const char *cmd = json_string_value(json_object_get(m, "cmd"));
        if (cmd && (strstr(cmd, "_reply") || strcmp(cmd, "error") == 0))
            return m;
        json_decref(m);
    }
}

static void tcp_expect(struct test_client *c, const char *result, const char *request)
{
    json_t *m = tcp_call(c, request);
    ck_assert_msg(check_json_str_is(m, "result", result), "%s: %s", request, check_dump(m));
    json_decref(m);
}

/* Read until a push of `cmd` with this text. */
static void tcp_wait_message(struct test_client *c, const char *cmd, const char *text)
{
    for (;;) {
        json_t *m = test_client_read_json(c, WAIT_MS);
        ck_assert_msg(m != NULL, "no %s '%s'", cmd, text);
        int found = check_json_str_is(m, "cmd", cmd) && check_json_str_is(m, "text", text);
        json_decref(m);
        if (found)
            return;
    }
}

static void start_web_chat(void)
{
    start_chat_web(NULL, CHATD_SOURCE_DIR "/web", 0, NULL, 0);
}

START_TEST(two_browser_users_and_a_tcp_user_chat_privately_and_in_a_group)
{
    enum browser_kind kind = kind_of(_i);
    start_web_chat();
    struct test_client *carol = new_user("carol");
    struct browser *ba, *bb;
    struct browser_page *alice = open_client(kind, &ba), *bob = open_client(kind, &bb);
    register_in_page(alice, "alice");
    register_in_page(bob, "bob");

    /* Friends, with presence: alice adds bob in her page, carol adds both over TCP. */
    submit_form(alice, "friend-form", "bob", "button");
    wait_for(bob, CONV_BUTTON "?.querySelector('.dot.online')", "alice");
    tcp_expect(carol, "success", "{\"cmd\":\"add_friend\",\"friend\":\"alice\"}");
    tcp_expect(carol, "success", "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}");
    wait_for(alice, CONV_BUTTON "?.querySelector('.dot.online')", "carol");

    /* alice writes to bob: an unread count for him, then delivered and read for her. */
    open_conversation(alice, "bob");
    say(alice, "hi bob");
    wait_for(bob, CONV_BUTTON "?.querySelector('.badge')?.textContent === '1'", "alice");
    open_conversation(bob, "alice");
    wait_last_text(bob, "hi bob");
    wait_for(alice, LAST_MESSAGE "?.querySelector('.mark').textContent === 'read'");
    ck_assert_int_eq(browser_type(bob, "two\nlines"), 0); /* a newline, as Shift+Enter types */
    ck_assert_int_eq(browser_key(bob, "Enter"), 0);
    wait_last_text(alice, "two\\nlines"); /* a JavaScript escape */

    /* carol, at a terminal, and bob, in his browser. */
    tcp_expect(carol, "success",
               "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"from a terminal\"}");
    open_conversation(bob, "carol");
    wait_last_text(bob, "from a terminal");
    say(bob, "hello carol <b>&amp;</b>");
    tcp_wait_message(carol, "private_chat_recv", "hello carol <b>&amp;</b>");

    /* A group: alice creates it, bob joins in the page, carol over TCP. */
    submit_form(alice, "group-form", "lounge", "[value=create_group]");
    wait_for(alice, "document.getElementById('conv-title').textContent === 'Group lounge'");
    submit_form(bob, "group-form", "lounge", "[value=join_group]");
    wait_for(bob, "document.getElementById('conv-title').textContent === 'Group lounge'");
    tcp_expect(carol, "success", "{\"cmd\":\"join_group\",\"group\":\"lounge\"}");
    js(bob, "document.getElementById('text').focus()");
    say(bob, "hello lounge");
    wait_last_text(alice, "hello lounge");
    tcp_wait_message(carol, "group_chat_recv", "hello lounge");
    tcp_expect(carol, "success",
               "{\"cmd\":\"group_chat\",\"group\":\"lounge\",\"text\":\"carol here\"}");
    wait_last_text(alice, "carol here");
    wait_last_text(bob, "carol here");
    js(alice, "document.getElementById('members-button').click()");
    wait_for(alice, "document.getElementById('member-list').children.length === 3");
    char *members = text_of(alice, "document.getElementById('member-list').textContent");
    ck_assert_str_eq(members, "alice (owner, online)bob (online)carol (online)");
    free(members);
    /* Markup in a text stays text. */
    js(bob, CONV_BUTTON ".click()", "carol");
    wait_last_text(bob, "hello carol <b>&amp;</b>");
    wait_for(bob, "document.querySelectorAll('#message-list b').length === 0");

    screenshot(kind, alice, "alice-desktop.png", 1000, 640, 0);
    screenshot(kind, bob, "bob-phone.png", 390, 720, 1);
    browser_close(alice);
    browser_close(bob);
    browser_quit(ba);
    browser_quit(bb);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(history_pages_back_and_a_lost_connection_resumes_without_repeats)
{
    enum browser_kind kind = kind_of(_i);
    start_web_chat();
    struct test_client *carol = new_user("carol");
    struct browser *bb;
    struct browser_page *bob = open_client(kind, &bb);
    register_in_page(bob, "bob");
    tcp_expect(carol, "success", "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}");
    char request[256];
    for (int i = 1; i <= 60; i++) {
        snprintf(request, sizeof(request),
                 "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"m%d\"}", i);
        tcp_expect(carol, "success", request);
    }

    /* A new visit knows no message: the first page of history, then older ones when the
     * list is scrolled to its top. */
    /* The old page answers until the new one replaces it: wait for a page without the
     * mark. */
    js(bob, "(window.reloading = true, location.reload())");
    wait_for(bob, "!window.reloading && document.readyState === 'complete'");
    wait_for(bob, "document.getElementById('conn-state').textContent === 'connected'");
    open_conversation(bob, "carol");
    wait_for(bob, MESSAGES ".length === 50");
    /* The message at the top of the list when it is scrolled there stays where it is on
     * screen while the older ones come in above it (it jumped to the oldest of them). */
    js(bob, "(() => { const box = document.getElementById('messages'); box.scrollTop = 0;"
            " window.wasTop = " MESSAGE_TEXT "('m11').getBoundingClientRect().top; })()");
    wait_for(bob, MESSAGES ".length === 60");
    wait_for(bob, "document.getElementById('older').hidden");
    wait_for(bob, "Math.abs(" MESSAGE_TEXT "('m11').getBoundingClientRect().top - wasTop) < 2");
    char *texts = text_of(bob, "[...document.querySelectorAll('#message-list .text')]"
                               ".map((t) => t.textContent).join(',')");
    ck_assert_ptr_nonnull(strstr(texts, "m1,m2,m3,"));
    ck_assert_ptr_nonnull(strstr(texts, ",m59,m60"));
    free(texts);

    /* The connection is lost and the network stays down: carol's messages are stored,
     * and bob's is kept until the page is back. */
    ck_assert_int_eq(browser_offline(bob, 1), 0);
    ck_assert_int_eq(browser_close_websockets(bob), 1);
    wait_for(bob,
             "document.getElementById('conn-state').textContent.startsWith('connection lost')");
    js(bob, "document.getElementById('text').focus()");
    say(bob, "written while away");
    wait_for(bob, LAST_MESSAGE ".querySelector('.mark').textContent === 'sending…'");
    for (int i = 61; i <= 63; i++) {
        snprintf(request, sizeof(request),
                 "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"m%d\"}", i);
        tcp_expect(carol, "offline", request);
    }
    ck_assert_int_eq(browser_offline(bob, 0), 0);
    wait_for(bob, "document.getElementById('conn-state').textContent === 'connected'");
    tcp_wait_message(carol, "private_chat_recv", "written while away");
    wait_for(bob, MESSAGES ".length === 64");
    wait_for(bob, "[...document.querySelectorAll('#message-list .text')].filter((t) =>"
                  " t.textContent === 'm63').length === 1");
    wait_for(bob, LAST_MESSAGE ".querySelector('.mark').textContent === 'sent' || " LAST_MESSAGE
                               ".querySelector('.mark').textContent === 'delivered'");
    wait_for(bob, "[...document.querySelectorAll('#message-list .msg')].filter((m) =>"
                  " ['m61', 'm62', 'm63'].includes(m.querySelector('.text').textContent) &&"
                  " m.querySelector('.mark').textContent === 'received while you were away')"
                  ".length === 3");
    /* Nothing comes twice, also after another reconnect. */
    ck_assert_int_eq(browser_close_websockets(bob), 1);
    wait_for(bob,
             "document.getElementById('conn-state').textContent.startsWith('connection lost')");
    wait_for(bob, "document.getElementById('conn-state').textContent === 'connected'");
    tcp_expect(carol, "success",
               "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"last\"}");
    wait_last_text(bob, "last");
    char *count = text_of(bob, MESSAGES ".length");
    ck_assert_str_eq(count, "65");
    free(count);

    screenshot(kind, bob, "bob-resumed.png", 1000, 640, 0);
    browser_close(bob);
    browser_quit(bb);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* "Log out everywhere" from another device ends the page's session on the server, which
 * sends it nothing (protocol.md, logout): the page learns it from the not_logged_in
 * answer to its next request, and shows the login form instead of looking logged in
 * with the message "sending…" for ever. */
START_TEST(a_logout_everywhere_from_elsewhere_ends_the_page_s_login)
{
    enum browser_kind kind = kind_of(_i);
    start_web_chat();
    struct test_client *carol = new_user("carol");
    struct browser *bb;
    struct browser_page *bob = open_client(kind, &bb);
    register_in_page(bob, "bob");
    tcp_expect(carol, "success", "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}");
    open_conversation(bob, "carol");

    struct test_client *elsewhere = connect_client();
    json_decref(do_login(elsewhere, "bob", WEB_PASSWD, "success"));
    tcp_expect(elsewhere, "success", "{\"cmd\":\"logout\",\"all\":true}");
    say(bob, "still there?");
    wait_for(bob, "!document.getElementById('login-view').hidden");
    wait_for(bob, "document.getElementById('login-error').textContent.startsWith("
                  "'Your saved login is no longer valid')");
    char *saved = text_of(bob, "localStorage.getItem('chatd.login')");
    ck_assert_str_eq(saved, "null");
    free(saved);
    browser_close(bob);
    browser_quit(bb);
    test_client_close(elsewhere);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* A phone-sized screen, logging in with a password: the state line says "logging in…"
 * until the login's reply, not "connected" as soon as the socket opens; the sidebar is
 * a menu over the conversation, and choosing a chat closes it and leaves the focus in
 * the text box. A new visit, logged in with the saved token, opens the menu with the
 * focus on its first chat too (it was an empty page with nothing focused). */
START_TEST(a_password_login_and_choosing_a_chat_on_a_phone)
{
    enum browser_kind kind = kind_of(_i);
    start_web_chat();
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    tcp_expect(carol, "success", "{\"cmd\":\"add_friend\",\"friend\":\"dave\"}");
    struct browser *b;
    struct browser_page *p = open_client(kind, &b);
    ck_assert_int_eq(browser_viewport(p, 390, 720, 1), 0);
    wait_for(p, "document.getElementById('login-form').user === document.activeElement");
    js(p, "(() => { const s = document.getElementById('conn-state'); window.states = [];"
          " new MutationObserver(() => states.push(s.textContent)).observe(s,"
          " {childList: true, characterData: true, subtree: true}); })()");
    ck_assert_int_eq(browser_type(p, "dave"), 0);
    ck_assert_int_eq(browser_key(p, "Tab"), 0);
    ck_assert_int_eq(browser_type(p, PASSWD), 0);
    ck_assert_int_eq(browser_key(p, "Enter"), 0);
    wait_for(p, "document.getElementById('me').textContent === 'dave'");
    wait_for(p, "document.getElementById('conn-state').textContent === 'connected'");
    char *states = text_of(p, "states.join(',')");
    ck_assert_msg(strstr(states, "connecting…,logging in…,connected"), "states: %s", states);
    free(states);

    wait_for(p, "document.body.classList.contains('menu-open')");
    open_conversation(p, "carol"); /* the focus in the text box */
    wait_for(p, "!document.body.classList.contains('menu-open')");

    js(p, "(window.reloading = true, location.reload())");
    wait_for(p, "!window.reloading && document.readyState === 'complete'");
    wait_for(p, "document.getElementById('conn-state').textContent === 'connected'");
    wait_for(p, "document.body.classList.contains('menu-open')");
    wait_for(p, "document.activeElement.dataset.key === 'u:carol'");
    browser_close(p);
    browser_quit(b);
    test_client_close(dave);
    test_client_close(carol);
    stop_chat();
}
END_TEST

static Suite *web_chat_suite(void)
{
    Suite *s = suite_create("web_chat");
    TCase *tc = tcase_create("browser");
    tcase_set_timeout(tc, 180);
    /* Each scenario once per browser: Chromium always (the suite is built only with
     * it), Firefox where firefox-esr is installed. */
    int kinds = browser_installed(BROWSER_FIREFOX) ? BROWSER_KINDS : BROWSER_FIREFOX;
    tcase_add_loop_test(tc, two_browser_users_and_a_tcp_user_chat_privately_and_in_a_group, 0,
                        kinds);
    tcase_add_loop_test(tc, history_pages_back_and_a_lost_connection_resumes_without_repeats, 0,
                        kinds);
    tcase_add_loop_test(tc, a_logout_everywhere_from_elsewhere_ends_the_page_s_login, 0, kinds);
    tcase_add_loop_test(tc, a_password_login_and_choosing_a_chat_on_a_phone, 0, kinds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(web_chat_suite());
}
