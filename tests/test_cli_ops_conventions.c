/* test_cli_ops_conventions.c - the conventions every `wf` command keeps, against a real Redis
 * and a real wf-worker (cli_ops_env.h): help for every command and the exit codes listed, one
 * duration syntax for every time option, --redis '' as a usage error, wf web's documented
 * default address, and colour on a terminal unless NO_COLOR. */
#include <criterion/criterion.h>

#include "cli_ops_env.h"

TestSuite(cli_ops, .init = cli_ops_setup, .fini = cli_ops_teardown, .timeout = 120);

/* ---- help ----------------------------------------------------------------------------------- */

Test(cli_ops, every_command_has_help_and_the_exit_codes_are_listed)
{
    static const char *const cmds[] = {"status", "steps", "pause", "resume",  "restart",
                                       "retry",  "list",  "stats", "workers", "purge",
                                       "web",    "stop",  "run",   "wait"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out;
        cr_assert_eq(wf(&out, cmds[i], "--help", NULL), 0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "Usage: wf %s", cmds[i]);
        cr_assert_not_null(strstr(out, want), "%s", out);
        free(out);
    }
    char *out;
    cr_assert_eq(wf(&out, "--help", NULL), 0);
    cr_assert_not_null(strstr(out, "  8  the run's state does not allow it"), "%s", out);
    cr_assert_not_null(strstr(out, "  9  web: cannot listen"), "%s", out);
    cr_assert_not_null(strstr(out, "purge --older-than"), "%s", out);
    cr_assert_not_null(strstr(out, "  10 wait, status --follow: the run ended cancelled"), "%s",
                       out);
    cr_assert_not_null(strstr(out, "Durations ("), "%s", out);
    cr_assert_not_null(strstr(out, "--no-color"), "%s", out);
    free(out);
    cr_assert_eq(wf(&out, "pause", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "restart", "x:y", "--clear-everything", NULL), 1);
    free(out);
    cr_assert_eq(wf(&out, "workers", "--bogus", NULL), 1);
    free(out);
}

/* ---- durations, --redis '' ------------------------------------------------------------------ */

Test(cli_ops, one_duration_syntax_for_every_time_option)
{
    /* --delay: units, and a bare number is still milliseconds. */
    char *out;
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "10m", "--id", "d-10m", NULL), 0);
    json_t *doc = parse(out);
    json_t *st = json_object_get(doc, "status");
    json_int_t due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 599000 && due <= 601000, "--delay 10m is due in %lld ms", (long long)due);
    json_decref(doc);
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "1h30m", "--json", NULL), 0);
    doc = parse(out);
    st = json_object_get(doc, "status");
    due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 5399000 && due <= 5401000, "--delay 1h30m is due in %lld ms", (long long)due);
    json_decref(doc);
    cr_assert_eq(wf(&out, "run", "publish-draft", "--delay", "600000", NULL), 0);
    doc = parse(out);
    st = json_object_get(doc, "status");
    due = ifield(st, "wakeAt") - ifield(st, "createdAt");
    cr_assert(due >= 599000 && due <= 601000, "bare --delay 600000 is due in %lld ms",
              (long long)due);
    json_decref(doc);

    /* --timeout: units (and a bare number is still seconds: test_cli's --timeout 0.3). */
    long long t0 = redis_now();
    cr_assert_eq(wf(&out, "run", "slow", "20000", "--wait", "--timeout", "300ms", NULL), 7);
    cr_assert_lt(redis_now() - t0, 10000, "--timeout 300ms gave up in time");
    free(out);

    /* --older-than, --since/--until, limit --per and --debounce. */
    cr_assert_eq(wf(&out, "purge", "--older-than", "1h30m", "--dry-run", NULL), 0);
    free(out);
    cr_assert_eq(wf(&out, "list", "--since", "1h30m", "--until", "500ms", NULL), 0);
    free(out);
    cr_assert_eq(wf(&out, "limit", "publish-draft", "--rate", "5", "--per", "1m", "--debounce",
                    "1.5s", "--json", NULL),
                 0);
    doc = parse(out);
    cr_assert_eq(ifield(doc, "ratePerMs"), 60000);
    cr_assert_eq(ifield(doc, "debounceMs"), 1500);
    json_decref(doc);
    cr_assert_eq(
        wf(&out, "limit", "publish-draft", "--per", "250", "--debounce", "0", "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(ifield(doc, "ratePerMs"), 250, "a bare --per is still milliseconds");
    cr_assert_eq(ifield(doc, "debounceMs"), 0);
    json_decref(doc);

    /* Anything else: exit 1 and one message that names the option and shows the syntax. */
    static const char *const bad[][2] = {
        {"run publish-draft --delay 10x", "--delay: '10x' is not a duration"},
        {"run publish-draft --wait --timeout 5mins", "--timeout: '5mins' is not a duration"},
        {"run publish-draft --delay -5s", "--delay: '-5s' is not a duration"},
        {"run publish-draft --delay 1h30", "--delay: '1h30' is not a duration"},
        {"purge --older-than 0x10", "--older-than: '0x10' is not a duration"},
        {"limit publish-draft --debounce soon", "--debounce: 'soon' is not a duration"},
        {"wait publish-draft:x --timeout 1y", "--timeout: '1y' is not a duration"},
        {"list --since 10x", "--since: '10x' is not a time"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sh(&out, "$WF %s 2>&1", bad[i][0]), 1, "%s: %s", bad[i][0], out);
        cr_assert_not_null(strstr(out, bad[i][1]), "%s: %s", bad[i][0], out);
        if (strncmp(bad[i][0], "list", 4) != 0)
            cr_assert_not_null(strstr(out, "use e.g. 500ms, 10s, 10m, 7d"), "%s", out);
        free(out);
    }
    /* Nothing was started by the refused commands: three delayed runs and the slow one. */
    cr_assert_eq(wf(&out, "list", "--json", NULL), 0);
    doc = parse(out);
    cr_assert_eq(json_array_size(doc), 4);
    json_decref(doc);
}

Test(cli_ops, an_empty_redis_url_is_a_usage_error_not_the_default)
{
    char *bin = wf_test_path("wf"), *out;
    /* $WF_REDIS_URL names the test's Redis: an empty --redis must not fall back to it. */
    const char *before[] = {bin, "--redis", "", "run", "publish-draft", "--id", "empty", NULL};
    const char *after[] = {bin, "run", "publish-draft", "--id", "empty", "--redis=", NULL};
    const char *envp[] = {env.redis_env, NULL};
    cr_assert_eq(wf_test_run(before, envp, NULL, &out, 30000), 1, "%s", out);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert_eq(wf_test_run(after, envp, NULL, &out, 30000), 1, "%s", out);
    free(out);
    cr_assert_str_eq(state_of("publish-draft:empty"), "", "no run was started");
    free(bin);
    cr_assert_eq(sh(&out, "$WF status x:y --redis '' 2>&1"), 1);
    cr_assert_not_null(strstr(out, "--redis: the URL is empty"), "%s", out);
    free(out);
}

/* ---- wf web's default address --------------------------------------------------------------- */

typedef struct web_wait {
    pid_t pid;
    const char *log;
    int status, exited;
} web_wait;

static int web_ready_or_gone(void *arg)
{
    web_wait *w = arg;
    if (waitpid(w->pid, &w->status, WNOHANG) == w->pid) return w->exited = 1;
    char *text = wf_test_slurp(w->log);
    int ready = strstr(text, "listening on") != NULL;
    free(text);
    return ready;
}

Test(cli_ops, web_without_listen_uses_the_documented_default)
{
    char *bin = wf_test_path("wf"), log[400];
    snprintf(log, sizeof log, "%s/web.log", env.redis.dir);
    const char *argv[] = {bin, "--redis", env.redis.url, "web", NULL};
    const char *envp[] = {"WF_WEB_TOKEN=", NULL};
    web_wait w = {wf_test_spawn(argv, envp, log), log, 0, 0};
    free(bin);
    cr_assert_gt(w.pid, 0);
    cr_assert(wf_test_wait(web_ready_or_gone, &w, 15000), "wf web neither listened nor exited");
    char *text = wf_test_slurp(log);
    if (w.exited) {
        /* Port 8080 is taken on this machine: still, the default is what it tried. */
        cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 9, "%#x: %s", w.status, text);
        cr_assert_not_null(strstr(text, "cannot listen on 127.0.0.1:8080"), "%s", text);
    } else {
        cr_assert_not_null(strstr(text, "listening on http://127.0.0.1:8080/"), "%s", text);
        int st = wf_test_kill(w.pid, SIGTERM, 15000);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x", st);
    }
    free(text);
}

/* ---- colour --------------------------------------------------------------------------------- */

/* Like sh() but on a terminal (script(1)), with NO_COLOR and TERM set as a user's shell might. */
static int tty_sh(char **out, const char *fmt, ...)
{
    char *bin = wf_test_path("wf"), cmd[2048];
    int n =
        snprintf(cmd, sizeof cmd, "unset NO_COLOR; TERM=xterm; export TERM; WF='%s --redis %s'; ",
                 bin, env.redis.url);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    int rc = wf_test_run(argv, NULL, NULL, out, 30000);
    free(bin);
    return rc;
}

Test(cli_ops, states_are_coloured_on_a_terminal_unless_no_color)
{
    char *done = start_run("slow", "10", "--wait", NULL, NULL);
    char *failed = start_run("fatal", "{}", "--wait", NULL, NULL);
    char *out;
    /* On a terminal: completed green, failed red, the table still aligned. */
    cr_assert_eq(tty_sh(&out, "$WF list"), 0, "%s", out);
    cr_assert_not_null(strstr(out, "\033[32mcompleted\033[0m  "), "%s", out);
    cr_assert_not_null(strstr(out, "\033[31mfailed\033[0m     "), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "$WF status %s --text", failed), 0, "%s", out);
    cr_assert_not_null(strstr(out, "State      \033[31mfailed\033[0m"), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "$WF wait %s", done), 0, "%s", out);
    cr_assert_not_null(strstr(out, ": \033[32mcompleted\033[0m"), "%s", out);
    free(out);
    cr_assert_eq(tty_sh(&out, "NO_COLOR= $WF list"), 0, "%s", out);
    cr_assert_not_null(strstr(out, "\033[32mcompleted"), "an empty NO_COLOR is unset: %s", out);
    free(out);

    /* NO_COLOR, --no-color (before or after the command), TERM=dumb, or a pipe: none. */
    static const char *const plain[] = {"NO_COLOR=1 $WF list", "$WF --no-color list",
                                        "$WF list --no-color", "TERM=dumb $WF list",
                                        "$WF list | cat"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        cr_assert_eq(tty_sh(&out, "%s", plain[i]), 0, "%s: %s", plain[i], out);
        cr_assert_not_null(strstr(out, "completed"), "%s: %s", plain[i], out);
        cr_assert_null(strstr(out, "\033["), "%s: %s", plain[i], out);
        free(out);
    }
    free(done);
    free(failed);
}
