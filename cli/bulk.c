/* bulk.c - acting on every run a filter selects: `wf stop --state S [--workflow W]` and
 * `wf retry --state S [--workflow W]`, with --dry-run, a count, and a confirmation (asked on a
 * terminal, --yes otherwise).
 *
 * Correct before fast: the runs are found by paging through the state indexes with the list API
 * (wf_list_runs), bounded above by Redis's time when the command started, so runs that reach
 * the state afterwards are not taken in; each is then acted on with the single-run API, after
 * reading its state again (a run that left the state meanwhile is skipped, not stopped or
 * retried). Acting moves runs out of the index, which can make paging by offset skip some at a
 * page boundary, so the selection is listed again afterwards and runs not seen before are acted
 * on too, until a listing finds none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PAGE       500 /* ids per wf_list_runs() call */
#define MAX_SWEEPS 5   /* listings after the first, to catch runs a page boundary skipped */

static const char *const VERB[] = {"stop", "retry"};
static const char *const DONE[] = {"stopped", "retried"};

int wf__cli_bulk_option(wf__cli_bulk *b, const char *cmd, int c, const char *arg)
{
    int64_t now;
    struct timespec ts;
    switch (c) {
    case WF__OPT_BULK_WORKFLOW:
        b->workflow = arg;
        break;
    case WF__OPT_BULK_STATE:
        b->state = wf_state_from_name(arg);
        if (b->state == WF_STATE_UNKNOWN) {
            wf__cli_usage_error(cmd, "--state: no state '%s'", arg);
            return -1;
        }
        break;
    case WF__OPT_BULK_SINCE:
    case WF__OPT_BULK_UNTIL:
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (wf__cli_parse_time(arg, now, c == WF__OPT_BULK_SINCE ? &b->since_ms : &b->until_ms) !=
            0) {
            wf__cli_usage_error(cmd,
                                "--%s: '%s' is not a time; use a duration before now (e.g. "
                                "500ms, 10s, 10m, 7d) or ms since the epoch",
                                c == WF__OPT_BULK_SINCE ? "since" : "until", arg);
            return -1;
        }
        break;
    case WF__OPT_BULK_DRY_RUN:
        b->dry_run = 1;
        break;
    case WF__OPT_BULK_YES:
        b->yes = 1;
        break;
    case WF__OPT_BULK_FORCE:
        b->force = 1;
        break;
    default:
        return 0;
    }
    b->given = 1;
    return 1;
}

/* ---- A set of run ids ------------------------------------------------------------------------
 */

/* The ids in the order found, and an open-addressing hash of them to find repeats. */
typedef struct idset {
    char **ids;
    size_t n, cap;
    size_t *slots; /* index + 1 into ids; 0: empty */
    size_t nslots; /* a power of two, at least twice n */
} idset;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int idset_has(const idset *set, const char *id)
{
    if (!set->nslots) return 0;
    for (size_t i = hash(id) & (set->nslots - 1);; i = (i + 1) & (set->nslots - 1)) {
        if (!set->slots[i]) return 0;
        if (strcmp(set->ids[set->slots[i] - 1], id) == 0) return 1;
    }
}

/* Adds a copy of `id` unless present. Returns 1 added, 0 present, -1 out of memory. */
static int idset_add(idset *set, const char *id)
{
    if (idset_has(set, id)) return 0;
    if (2 * (set->n + 1) > set->nslots) {
        size_t ns = set->nslots ? set->nslots * 2 : 1024;
        size_t *slots = calloc(ns, sizeof *slots);
        if (!slots) return -1;
        for (size_t k = 0; k < set->n; k++) {
            size_t i = hash(set->ids[k]) & (ns - 1);
            while (slots[i]) i = (i + 1) & (ns - 1);
            slots[i] = k + 1;
        }
        free(set->slots);
        set->slots = slots;
        set->nslots = ns;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        char **ids = realloc(set->ids, cap * sizeof *ids);
        if (!ids) return -1;
        set->ids = ids;
        set->cap = cap;
    }
    if (!(set->ids[set->n] = strdup(id))) return -1;
    size_t i = hash(id) & (set->nslots - 1);
    while (set->slots[i]) i = (i + 1) & (set->nslots - 1);
    set->slots[i] = ++set->n;
    return 1;
}

static void idset_free(idset *set)
{
    for (size_t i = 0; i < set->n; i++) free(set->ids[i]);
    free(set->ids);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* ---- Listing and acting ----------------------------------------------------------------------
 */

/* Pages through the selection and adds every id to `set`. Returns WF_CLI_OK or an exit code. */
static int collect(wf__cli *cli, const wf__cli_bulk *b, int64_t until_ms, idset *set)
{
    wf_list_options lo = {b->workflow, b->state, PAGE, b->since_ms, until_ms, 0};
    for (;;) {
        char **ids = NULL;
        size_t n = 0;
        wf_error err = {0};
        if (wf_list_runs(cli->client, &lo, &ids, &n, &err) != WF_OK) return wf__cli_fail(&err);
        int rc = WF_CLI_OK;
        for (size_t i = 0; i < n && rc == WF_CLI_OK; i++)
            if (idset_add(set, ids[i]) < 0) rc = wf__cli_print_json(NULL); /* out of memory */
        wf_list_free(ids, n);
        if (rc != WF_CLI_OK || n < PAGE) return rc;
        lo.offset += n;
    }
}

/* Redis's time now (ms), from the stats every workflow's numbers carry; 0 when no workflow is
 * registered (then nothing can be selected without --force). */
static int redis_now(wf__cli *cli, const char *workflow, int64_t *now)
{
    wf_stats *stats = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_workflow_stats(cli->client, workflow, &stats, &n, &err) != WF_OK)
        return wf__cli_fail(&err);
    *now = n ? stats[0].now_ms : 0;
    wf_stats_free(stats, n);
    return WF_CLI_OK;
}

/* Outcome of acting on one run. */
typedef enum result { ACTED, SKIPPED, FAILED } result;

/* Stops or retries run `id` if it is still in state `want`. On SKIPPED `why` says where it went;
 * on FAILED `err` holds the error. */
static result act(wf__cli *cli, wf__cli_bulk_action what, const char *id, wf_state want, char *why,
                  size_t why_size, wf_error *err)
{
    wf_run *run = wf_get_workflow_run(cli->client, id, err);
    if (!run) {
        if (err->code != WF_ERR_NOT_FOUND) return FAILED;
        snprintf(why, why_size, "gone (expired or purged)");
        return SKIPPED;
    }
    wf_status st = {0};
    int code = wf_run_status(run, &st, err);
    result r = FAILED;
    if (code == WF_OK && st.state != want) {
        snprintf(why, why_size, "now %s", wf_state_name(st.state));
        r = SKIPPED;
    } else if (code == WF_OK) {
        code = what == WF__BULK_STOP ? wf_run_stop(run, err) : wf_run_restart(run, 0, err);
        if (code == WF_OK) {
            r = ACTED;
        } else if (code == WF_ERR_FINAL || code == WF_ERR_STATE || code == WF_ERR_NOT_FOUND) {
            /* It moved between the read and the act: the script refused, nothing changed. */
            snprintf(why, why_size, "changed meanwhile (%s)", wf__cli_error_text(err));
            r = SKIPPED;
        }
    }
    wf_status_clear(&st);
    wf_run_free(run);
    return r;
}

/* Asks on the terminal whether to go on. Returns 1 for y/yes. */
static int confirm(const char *verb, size_t n, const wf__cli_bulk *b)
{
    fprintf(stderr, "%c%s %zu %s run%s%s%s? [y/N] ", verb[0] - 'a' + 'A', verb + 1, n,
            wf_state_name(b->state), n == 1 ? "" : "s", b->workflow ? " of " : "",
            b->workflow ? b->workflow : " of every workflow");
    fflush(stderr);
    char line[32];
    if (!fgets(line, sizeof line, stdin)) return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

int wf__cli_bulk_run(wf__cli *cli, const char *cmd, wf__cli_bulk_action what, const wf__cli_bulk *b)
{
    const char *verb = VERB[what], *done = DONE[what];
    int ok = what == WF__BULK_STOP ? !wf_state_is_final(b->state)
                                   : wf_state_is_final(b->state) && b->state != WF_STATE_COMPLETED;
    if (b->state == WF_STATE_UNKNOWN)
        return wf__cli_usage_error(cmd, "%s by selection needs --state S (or give one run id)",
                                   verb);
    if (!ok)
        return wf__cli_usage_error(cmd,
                                   what == WF__BULK_STOP
                                       ? "--state: stop is for runs not finished (queued, "
                                         "running, waiting, paused), not %s"
                                       : "--state: retry is for runs that ended failed, "
                                         "cancelled or terminated, not %s",
                                   wf_state_name(b->state));
    if (b->dry_run && b->yes)
        return wf__cli_usage_error(cmd, "--dry-run and --yes exclude each other");
    int rc = wf__cli_check_workflow(cli, cmd, b->workflow, b->force);
    int64_t until = 0;
    if (rc == WF_CLI_OK) rc = redis_now(cli, b->workflow, &until);
    if (rc != WF_CLI_OK) return rc;
    if (b->until_ms && (until == 0 || b->until_ms < until)) until = b->until_ms;

    idset sel = {0};
    if (until > 0) rc = collect(cli, b, until, &sel);
    const char *of = b->workflow ? b->workflow : "every workflow";
    if (rc != WF_CLI_OK) goto out;
    if (b->dry_run || sel.n == 0) {
        if (cli->json) {
            json_t *ids = json_array();
            for (size_t i = 0; ids && i < sel.n; i++)
                json_array_append_new(ids, json_string(sel.ids[i]));
            rc = wf__cli_print_json(
                json_pack("{s:s, s:s?, s:s, s:b, s:I, s:o*, s:I}", "action", verb, "workflow",
                          b->workflow, "state", wf_state_name(b->state), "dryRun", b->dry_run,
                          "count", (json_int_t)sel.n, "ids", ids, "acted", (json_int_t)0));
        } else {
            if (sel.n == 0)
                printf("no %s runs of %s to %s\n", wf_state_name(b->state), of, verb);
            else
                printf("would %s %zu %s run%s of %s:\n", verb, sel.n, wf_state_name(b->state),
                       sel.n == 1 ? "" : "s", of);
            for (size_t i = 0; i < sel.n; i++) puts(sel.ids[i]);
        }
        goto out;
    }
    if (!b->yes) {
        if (!isatty(fileno(stdin))) {
            rc = wf__cli_usage_error(cmd,
                                     "%s would act on %zu %s run%s of %s: give --yes to confirm "
                                     "(stdin is not a terminal to ask on), or --dry-run to list "
                                     "them",
                                     verb, sel.n, wf_state_name(b->state), sel.n == 1 ? "" : "s",
                                     of);
            goto out;
        }
        if (!confirm(verb, sel.n, b)) {
            fputs("wf: nothing done\n", stderr);
            rc = WF_CLI_USAGE;
            goto out;
        }
    }

    /* Act on the selection, then list it again for runs a page boundary skipped. */
    json_t *skipped = json_array(), *failed = json_array();
    if (!skipped || !failed) {
        json_decref(skipped);
        json_decref(failed);
        rc = wf__cli_print_json(NULL);
        goto out;
    }
    size_t acted = 0, next = 0;
    int first_error = WF_CLI_OK;
    for (int sweep = 0; sweep <= MAX_SWEEPS && rc == WF_CLI_OK; sweep++) {
        if (sweep > 0) {
            size_t before = sel.n;
            rc = collect(cli, b, until, &sel);
            if (rc != WF_CLI_OK || sel.n == before) break;
        }
        for (; next < sel.n; next++) {
            const char *id = sel.ids[next];
            char why[300] = "";
            wf_error err = {0};
            result r = act(cli, what, id, b->state, why, sizeof why, &err);
            if (r == ACTED) {
                acted++;
                if (!cli->json) printf("%s: %s\n", id, done);
            } else if (r == SKIPPED) {
                json_array_append_new(skipped, json_pack("{s:s, s:s}", "id", id, "why", why));
                if (!cli->json) printf("%s: skipped, %s\n", id, why);
            } else {
                const char *text = wf__cli_error_text(&err);
                json_array_append_new(failed, json_pack("{s:s, s:s}", "id", id, "error", text));
                fprintf(stderr, "wf: %s: %s\n", id, text);
                if (first_error == WF_CLI_OK) first_error = wf__cli_exit_code(err.code);
                if (wf__cli_exit_code(err.code) == WF_CLI_CONNECT) { /* the rest would fail too */
                    rc = first_error;
                    break;
                }
            }
        }
    }
    if (cli->json) {
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < sel.n; i++)
            json_array_append_new(ids, json_string(sel.ids[i]));
        int prc = wf__cli_print_json(json_pack(
            "{s:s, s:s?, s:s, s:b, s:I, s:o*, s:I, s:o, s:o}", "action", verb, "workflow",
            b->workflow, "state", wf_state_name(b->state), "dryRun", 0, "count", (json_int_t)sel.n,
            "ids", ids, "acted", (json_int_t)acted, "skipped", skipped, "failed", failed));
        if (rc == WF_CLI_OK) rc = prc;
    } else {
        printf("%s %zu of %zu %s run%s of %s", done, acted, sel.n, wf_state_name(b->state),
               sel.n == 1 ? "" : "s", of);
        if (json_array_size(skipped)) printf("; %zu skipped", json_array_size(skipped));
        if (json_array_size(failed)) printf("; %zu failed", json_array_size(failed));
        putchar('\n');
        json_decref(skipped);
        json_decref(failed);
    }
    if (rc == WF_CLI_OK) rc = first_error;
out:
    idset_free(&sel);
    return rc;
}
