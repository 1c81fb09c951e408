/* chaos_report.c - the accounting of a scenario, from Redis's own records and the workers' logs:
 *
 *   started     runs whose enqueue was acknowledged (wf_run_workflow_ex returned the run)
 *   completed   completed with exactly the output their workflow computes
 *   failed      ended failed / terminated / cancelled, with the reason Redis recorded; the crash
 *               and hang workflows must end that way (expected), every other run must not
 *   duplicated  runs that complete.lua accepted more than once (the workers log every accepted
 *               completion at debug level), plus runs found twice
 *   lost        started runs whose hash is gone or that never reached a final state. With
 *               appendfsync everysec a run acknowledged within the loss window before a kill -9 of
 *               Redis may be lost by Redis itself: counted apart as "lost in the fsync window"
 *   re-run      step bodies let past the lease fence after Redis held their finished record
 *               (the stepper workflow's VIOLATION check), i.e. a recorded step executed again
 *   in flight   step bodies let in before another worker recorded the same step (OVERLAP): a
 *               process frozen in or just before a body; at least once, as documented; shown,
 *               not failed
 */
#include "chaos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const want_output[K__COUNT] = {"{\"sum\":30,\"event\":null}", "\"slept\"", NULL,
                                                  NULL, "\"leaked\""};

static int final_state(const char *s)
{
    return s && (!strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled") ||
                 !strcmp(s, "terminated"));
}

/* HMGET of every accepted run, pipelined. Returns an array of e->nruns replies (NULL for runs
 * not accepted, or when Redis is unreachable); caller frees with free_replies. */
static redisReply **fetch(chaos_env *e)
{
    redisContext *c = chaos_redis(e);
    if (!c) return NULL;
    redisReply **out = calloc((size_t)e->nruns + 1, sizeof *out);
    if (!out) return NULL;
    for (int i = 0; i < e->nruns; i++) {
        if (!e->runs[i].accepted) continue;
        const char *id = e->runs[i].id;
        char key[160];
        snprintf(key, sizeof key, "wf:{%.*s}:run:%s", (int)(strchr(id, ':') - id), id, id);
        redisAppendCommand(c, "HMGET %s state error output reclaims", key);
    }
    for (int i = 0; i < e->nruns; i++) {
        if (!e->runs[i].accepted) continue;
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) break;
        out[i] = r;
    }
    return out;
}

static void free_replies(chaos_env *e, redisReply **rs)
{
    if (!rs) return;
    for (int i = 0; i < e->nruns; i++)
        if (rs[i]) freeReplyObject(rs[i]);
    free(rs);
}

static const char *field(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements <= i) return NULL;
    const redisReply *f = r->element[i];
    return f->type == REDIS_REPLY_STRING ? f->str : NULL;
}

void chaos_settle(chaos_env *e, int timeout_ms)
{
    int64_t end = chaos_now_ms() + timeout_ms;
    while (chaos_now_ms() < end) {
        chaos_pump(e);
        redisReply **rs = fetch(e);
        int open = 0, unaccepted = 0;
        for (int i = 0; i < e->nruns; i++) {
            if (!e->runs[i].accepted) {
                unaccepted++;
                continue;
            }
            const char *st = rs ? field(rs[i], 0) : "?";
            if (st && !final_state(st)) open++; /* missing (NULL) is lost, not open */
        }
        free_replies(e, rs);
        if (rs && open == 0 && unaccepted == 0) return;
        chaos_nap(200);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Counts "run completed" log lines per run id; returns how many runs have more than one. */
static int duplicate_completions(chaos_env *e)
{
    static const char marker[] = "msg=\"run completed\" run=";
    char *log = wf_test_slurp(e->worker_log);
    if (!log) return 0;
    size_t n = 0, cap = 1024;
    char **ids = malloc(cap * sizeof *ids);
    for (char *p = log; ids && (p = strstr(p, marker)); p++) {
        p += sizeof marker - 1;
        if (*p == '"') p++;
        if (n == cap) {
            char **g = realloc(ids, 2 * cap * sizeof *ids);
            if (!g) break;
            ids = g;
            cap *= 2;
        }
        ids[n++] = strndup(p, strcspn(p, "\" \n"));
    }
    int dups = 0;
    if (ids) qsort(ids, n, sizeof *ids, cmp_str);
    for (size_t i = 1; ids && i < n; i++)
        if (!strcmp(ids[i], ids[i - 1]) && (i < 2 || strcmp(ids[i], ids[i - 2]))) {
            dups++;
            printf("   DUPLICATE completion of %s\n", ids[i]);
        }
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(log);
    return dups;
}

static int count_lines(const char *path, const char *what)
{
    char *text = wf_test_slurp(path);
    int n = 0;
    for (const char *p = text; text && (p = strstr(p, what)); p++) n++;
    free(text);
    return n;
}

static int in_loss_window(const chaos_env *e, const chaos_run *r)
{
    for (int i = 0; e->loss_window_ms > 0 && i < e->ncrash; i++)
        if (r->accepted_ms <= e->crash_ms[i] &&
            e->crash_ms[i] - r->accepted_ms <= e->loss_window_ms)
            return 1;
    return 0;
}

/* Failure reasons, grouped: the error text up to 70 bytes or its first '(', digits folded to #. */
typedef struct reason {
    char text[80];
    chaos_kind kind;
    int n;
} reason;

static void add_reason(reason *rs, int *nrs, int max, chaos_kind kind, const char *err)
{
    char t[80];
    size_t j = 0;
    for (const char *p = err ? err : "(no error text)"; *p && *p != '(' && j < 70; p++) {
        int digit = *p >= '0' && *p <= '9';
        if (digit && j > 0 && t[j - 1] == '#') continue;
        t[j++] = digit ? '#' : *p;
    }
    t[j] = '\0';
    for (int i = 0; i < *nrs; i++)
        if (rs[i].kind == kind && !strcmp(rs[i].text, t)) {
            rs[i].n++;
            return;
        }
    if (*nrs == max) return;
    snprintf(rs[*nrs].text, sizeof rs[*nrs].text, "%s", t);
    rs[*nrs].kind = kind;
    rs[(*nrs)++].n = 1;
}

int chaos_report(chaos_env *e, chaos_counts *c)
{
    static const char *const names[K__COUNT] = {"stepper", "slow", "hang", "crash", "leak"};
    memset(c, 0, sizeof *c);
    redisReply **rs = fetch(e);
    if (!rs) chaos_problem(e, "Redis unreachable for the final count");
    reason reasons[16];
    int nreasons = 0, unexpected = 0, unaccepted = 0;
    long long reclaims = 0;
    for (int i = 0; rs && i < e->nruns; i++) {
        const chaos_run *r = &e->runs[i];
        if (!r->accepted) {
            unaccepted++;
            continue;
        }
        c->started++;
        const char *st = field(rs[i], 0), *err = field(rs[i], 1);
        const redisReply *out = rs[i] && rs[i]->elements > 2 ? rs[i]->element[2] : NULL;
        if (field(rs[i], 3)) reclaims += atoll(field(rs[i], 3));
        if (!st || !final_state(st)) {
            if (!st && in_loss_window(e, r)) {
                c->lost_in_window++;
                continue;
            }
            c->lost++;
            if (c->lost <= 5) printf("   LOST %s: %s\n", r->id, st ? st : "its hash is gone");
            continue;
        }
        if (!strcmp(st, "completed")) {
            char *json = NULL;
            int ok = want_output[r->kind] && out && out->type == REDIS_REPLY_STRING &&
                     wf_msgpack_to_json(out->str, out->len, &json, NULL) == WF_OK &&
                     !strcmp(json, want_output[r->kind]);
            if (ok) {
                c->completed++;
            } else {
                c->wrong++;
                if (c->wrong <= 5)
                    printf("   WRONG OUTPUT %s: %s\n", r->id, json ? json : "(none)");
            }
            free(json);
            continue;
        }
        c->failed++;
        add_reason(reasons, &nreasons, 16, r->kind, err);
        int expected =
            (r->kind == K_HANG && !strcmp(st, "terminated") && err && strstr(err, "timed out")) ||
            (r->kind == K_CRASH && !strcmp(st, "failed") && err && strstr(err, "worker lost"));
        if (expected)
            c->expected_failures++;
        else
            unexpected++;
    }
    free_replies(e, rs);
    c->duplicated = duplicate_completions(e);
    c->rerun = count_lines(e->exec_log, "VIOLATION");
    c->step_execs = count_lines(e->exec_log, "STEP ");
    int overlaps = count_lines(e->exec_log, "OVERLAP");
    int sanitizer =
        count_lines(e->worker_log, "Sanitizer") + count_lines(e->worker_log, "runtime error");

    printf("   runs started %d, completed %d, failed %d, duplicated %d, lost %d", c->started,
           c->completed, c->failed, c->duplicated, c->lost);
    if (e->loss_window_ms) printf(" (+%d lost in the fsync window)", c->lost_in_window);
    printf(", recorded steps re-run %d\n", c->rerun);
    for (int i = 0; i < nreasons; i++)
        printf("   failed: %d %s run%s: \"%s\"\n", reasons[i].n, names[reasons[i].kind],
               reasons[i].n == 1 ? "" : "s", reasons[i].text);
    printf("   reclaims %lld; step executions %d", reclaims, c->step_execs);
    if (overlaps) printf(" (%d already in flight when another worker recorded the step)", overlaps);
    if (e->notes[0]) printf("; %s", e->notes);
    printf("\n");

    if (c->started == 0) chaos_problem(e, "no run was started");
    if (unaccepted) chaos_problem(e, "%d runs never accepted", unaccepted);
    if (c->lost) chaos_problem(e, "%d runs lost", c->lost);
    if (c->duplicated) chaos_problem(e, "%d runs completed twice", c->duplicated);
    if (c->rerun && !e->loss_window_ms) chaos_problem(e, "%d recorded steps ran again", c->rerun);
    if (c->wrong) chaos_problem(e, "%d runs completed with a wrong output", c->wrong);
    if (unexpected) chaos_problem(e, "%d runs failed that should have completed", unexpected);
    if (sanitizer) chaos_problem(e, "a sanitizer reported errors in a worker process");
    if (e->no_reclaims && reclaims)
        chaos_problem(e, "%lld leases reclaimed although no worker died", reclaims);
    int passed = e->problems[0] == '\0';
    if (!passed) printf("   problems: %s\n", e->problems);
    printf("   %s %s\n", passed ? "PASS" : "FAIL", e->name);
    fflush(stdout);
    return passed;
}
