/* cmd_ops.c - looking after a whole Redis of runs: `wf stats` (counts per state and throughput
 * per workflow), `wf workers` (the live worker processes) and `wf purge` (delete old finished
 * runs before their retention time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char STATS_USAGE[] =
    "Usage: wf stats [--workflow W [--force]]\n"
    "\n"
    "Per workflow: how many runs are in each state, how many completed in the last minute (and\n"
    "so runs/s), how long the oldest queued run has waited, and the dead letters kept. A table,\n"
    "or with --json an array of {\"workflow\", \"counts\": {STATE: N...}, \"total\",\n"
    "\"completedLastMinute\", \"runsPerSecond\", \"oldestQueuedMs\", \"dead\", \"now\",\n"
    "\"liveWorkers\", \"paused\"}. A workflow with queued or waiting runs that no live worker\n"
    "serves gets a warning on stderr: those runs will not start until a worker with it runs. A\n"
    "paused workflow (`wf pause-workflow`) is named below the table.\n"
    "\n"
    "Options:\n"
    "  --workflow W   only workflow W (default: every registered workflow); a name no worker\n"
    "                 registered is refused (exit 6, naming the closest registered names)\n"
    "  --force        show W even so\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char WORKERS_USAGE[] =
    "Usage: wf workers [--live]\n"
    "\n"
    "Lists the worker processes that registered with this Redis: name (as in a run's \"worker\"),\n"
    "host, pid, slots in use of its concurrency, when it started, its last heartbeat, and its\n"
    "workflows. A worker not heard from for 60 s is shown as stale (presumed dead; its runs are\n"
    "reclaimed when their leases expire). A table, or with --json an array of {\"name\", "
    "\"host\",\n"
    "\"pid\", \"startedAt\", \"lastSeen\", \"ageMs\", \"concurrency\", \"busy\", \"workflows\",\n"
    "\"stale\"}.\n"
    "\n"
    "Options:\n"
    "  --live         leave out stale workers\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

static const char PURGE_USAGE[] =
    "Usage: wf purge --older-than DURATION [--workflow W [--force]] [--state S] [--dry-run]\n"
    "\n"
    "Deletes finished runs (completed, failed, cancelled, terminated), with their steps, whose\n"
    "last state change is older than DURATION (by Redis's clock), before their retention time\n"
    "would. Runs that have not finished are never touched. Prints how many were deleted, or\n"
    "with --json {\"purged\": N, \"dryRun\": BOOL}.\n"
    "\n"
    "Options:\n"
    "  --older-than D  required: a duration (30s, 10m, 2h, 7d; a bare number is milliseconds)\n"
    "  --workflow W    only workflow W (default: every registered workflow); one no worker\n"
    "                  registered is refused (exit 6) unless --force\n"
    "  --state S       only one final state: completed, failed, cancelled or terminated\n"
    "  --dry-run       delete nothing; print how many runs would be deleted\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

/* ---- stats ------------------------------------------------------------------------------------
 */

json_t *wf__cli_stats_json(const wf_stats *s)
{
    json_t *counts = json_object();
    long long total = 0;
    for (int st = WF_STATE_QUEUED; counts && st <= WF_STATE_TERMINATED; st++) {
        json_object_set_new(counts, wf_state_name((wf_state)st), json_integer(s->count[st]));
        total += s->count[st];
    }
    return json_pack("{s:s, s:o*, s:I, s:I, s:f, s:I, s:I, s:I, s:b}", "workflow", s->workflow,
                     "counts", counts, "total", (json_int_t)total, "completedLastMinute",
                     (json_int_t)s->completed_last_minute, "runsPerSecond", s->runs_per_second,
                     "oldestQueuedMs", (json_int_t)s->oldest_queued_ms, "dead", (json_int_t)s->dead,
                     "now", (json_int_t)s->now_ms, "paused", s->paused);
}

static void print_stats(const wf_stats *stats, size_t n)
{
    int w = 8;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(stats[i].workflow) > w) w = (int)strlen(stats[i].workflow);
    printf("%-*s  %7s %7s %6s %7s %9s %6s %9s %10s  %8s %7s  %-13s %5s\n", w, "WORKFLOW", "QUEUED",
           "RUNNING", "PAUSED", "WAITING", "COMPLETED", "FAILED", "CANCELLED", "TERMINATED",
           "DONE/MIN", "RUNS/S", "OLDEST QUEUED", "DEAD");
    for (size_t i = 0; i < n; i++) {
        const wf_stats *s = &stats[i];
        char oldest[32] = "-";
        if (s->count[WF_STATE_QUEUED] > 0)
            wf__cli_format_duration(s->oldest_queued_ms, oldest, sizeof oldest);
        printf("%-*s  %7lld %7lld %6lld %7lld %9lld %6lld %9lld %10lld  %8lld %7.2f  %-13s %5lld\n",
               w, s->workflow, s->count[WF_STATE_QUEUED], s->count[WF_STATE_RUNNING],
               s->count[WF_STATE_PAUSED], s->count[WF_STATE_WAITING], s->count[WF_STATE_COMPLETED],
               s->count[WF_STATE_FAILED], s->count[WF_STATE_CANCELLED],
               s->count[WF_STATE_TERMINATED], s->completed_last_minute, s->runs_per_second, oldest,
               s->dead);
    }
    for (size_t i = 0; i < n; i++)
        if (stats[i].paused)
            printf("%s is paused: its queued runs wait for `wf resume-workflow %s`\n",
                   stats[i].workflow, stats[i].workflow);
    if (n == 0) puts("no workflows registered");
}

int wf__cli_cmd_stats(wf__cli *cli, int argc, char **argv)
{
    const char *workflow;
    int rc;
    if (wf__cli_workflow_args(cli, argc, argv, "stats", STATS_USAGE, 0, "stats takes no arguments",
                              &workflow, &rc))
        return rc;
    wf_stats *stats = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_workflow_stats(cli->client, workflow, &stats, &n, &err) != WF_OK)
        return wf__cli_fail(&err);
    const char **names = calloc(n ? n : 1, sizeof *names);
    long long *live = calloc(n ? n : 1, sizeof *live);
    int known = names && live;
    for (size_t i = 0; known && i < n; i++) names[i] = stats[i].workflow;
    if (known) known = wf__cli_live_workers(cli, names, n, live) == 0;
    if (cli->json) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) {
            json_t *o = wf__cli_stats_json(&stats[i]);
            if (o && known) json_object_set_new(o, "liveWorkers", json_integer(live[i]));
            json_array_append_new(a, o);
        }
        rc = wf__cli_print_json(a);
    } else {
        print_stats(stats, n);
    }
    for (size_t i = 0; known && i < n; i++) {
        long long waiting = stats[i].count[WF_STATE_QUEUED] + stats[i].count[WF_STATE_WAITING];
        if (live[i] == 0 && waiting > 0)
            fprintf(stderr,
                    "wf: warning: no live worker serves '%s': its %lld queued or waiting run%s "
                    "will not start until a wf-worker with it runs\n",
                    stats[i].workflow, waiting, waiting == 1 ? "" : "s");
    }
    free(names);
    free(live);
    wf_stats_free(stats, n);
    return rc;
}

/* ---- workers ----------------------------------------------------------------------------------
 */

json_t *wf__cli_worker_json(const wf_worker_info *w)
{
    json_t *wfs = json_array();
    for (size_t i = 0; wfs && i < w->nworkflows; i++)
        json_array_append_new(wfs, json_string(w->workflows[i]));
    return json_pack("{s:s, s:s?, s:I, s:I, s:I, s:I, s:i, s:i, s:o*, s:b}", "name", w->name,
                     "host", w->host, "pid", (json_int_t)w->pid, "startedAt",
                     (json_int_t)w->started_at_ms, "lastSeen", (json_int_t)w->last_seen_ms, "ageMs",
                     (json_int_t)w->age_ms, "concurrency", w->concurrency, "busy", w->busy,
                     "workflows", wfs, "stale", w->stale);
}

static void print_workers(const wf_worker_info *ws, size_t n)
{
    if (n == 0) {
        puts("no workers");
        return;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(ws[i].name) > w) w = (int)strlen(ws[i].name);
    printf("%-*s  %-20s  %8s  %9s  %-20s  %-9s  %-6s  %s\n", w, "NAME", "HOST", "PID", "BUSY",
           "STARTED", "SEEN", "STATUS", "WORKFLOWS");
    for (size_t i = 0; i < n; i++) {
        const wf_worker_info *x = &ws[i];
        char host[24], busy[24], started[32], seen[40], age[24], wfs[256] = "";
        snprintf(busy, sizeof busy, "%d/%d", x->busy, x->concurrency);
        snprintf(seen, sizeof seen, "%s ago", wf__cli_format_duration(x->age_ms, age, sizeof age));
        for (size_t j = 0; j < x->nworkflows; j++) {
            size_t len = strlen(wfs);
            snprintf(wfs + len, sizeof wfs - len, "%s%s", j ? "," : "", x->workflows[j]);
        }
        printf("%-*s  %-20s  %8lld  %9s  %-20s  %-9s  %-6s  %s\n", w, x->name,
               wf__cli_cell(x->host, 20, host, sizeof host), x->pid, busy,
               wf__cli_format_time(x->started_at_ms, started, sizeof started),
               x->last_seen_ms > 0 ? seen : "never", x->stale ? "stale" : "live",
               wfs[0] ? wfs : "-");
    }
}

int wf__cli_cmd_workers(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_LIVE = 1 };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"live", no_argument, NULL, OPT_LIVE},
        {NULL, 0, NULL, 0},
    };
    int live = 0, c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        if (c != OPT_LIVE) return WF_CLI_USAGE;
        live = 1;
    }
    int done;
    if (wf__cli_args(cli, argc, "workers", WORKERS_USAGE, 0, 0, "workers takes no arguments",
                     &done))
        return done;
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK) return rc;
    wf_worker_info *ws = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_list_workers(cli->client, !live, &ws, &n, &err) != WF_OK) return wf__cli_fail(&err);
    if (cli->json) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) json_array_append_new(a, wf__cli_worker_json(&ws[i]));
        rc = wf__cli_print_json(a);
    } else {
        print_workers(ws, n);
    }
    wf_workers_free(ws, n);
    return rc;
}

/* ---- purge ------------------------------------------------------------------------------------
 */

int wf__cli_cmd_purge(wf__cli *cli, int argc, char **argv)
{
    enum { OPT_OLDER = 1, OPT_WORKFLOW, OPT_STATE, OPT_DRY, OPT_FORCE };
    static const struct option options[] = {
        WF__CLI_GLOBAL_OPTIONS,
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"state", required_argument, NULL, OPT_STATE},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0},
    };
    wf_purge_options po = {0};
    int has_age = 0, force = 0, c;
    while ((c = wf__cli_getopt(cli, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_OLDER:
            if (wf__cli_duration_arg("purge", "--older-than", optarg, 1, &po.older_than_ms) !=
                WF_CLI_OK)
                return WF_CLI_USAGE;
            has_age = 1;
            break;
        case OPT_WORKFLOW:
            po.workflow = optarg;
            break;
        case OPT_STATE:
            po.state = wf_state_from_name(optarg);
            if (!wf_state_is_final(po.state))
                return wf__cli_usage_error("purge",
                                           "--state wants a final state (completed, failed, "
                                           "cancelled, terminated), not '%s'",
                                           optarg);
            break;
        case OPT_DRY:
            po.dry_run = 1;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        default:
            return WF_CLI_USAGE;
        }
    }
    int done;
    if (wf__cli_args(cli, argc, "purge", PURGE_USAGE, 0, 0, "purge takes no arguments", &done))
        return done;
    if (!has_age) return wf__cli_usage_error("purge", "purge needs --older-than DURATION");
    int rc = wf__cli_check_workflow(cli, "purge", po.workflow, force);
    if (rc != WF_CLI_OK) return rc;
    size_t purged = 0;
    wf_error err = {0};
    if (wf_purge_runs(cli->client, &po, &purged, &err) != WF_OK) {
        if (purged) fprintf(stderr, "wf: %zu runs were deleted before the error\n", purged);
        return wf__cli_fail(&err);
    }
    if (cli->json)
        return wf__cli_print_json(
            json_pack("{s:I, s:b}", "purged", (json_int_t)purged, "dryRun", po.dry_run));
    printf("%s %zu finished run%s\n", po.dry_run ? "would purge" : "purged", purged,
           purged == 1 ? "" : "s");
    return WF_CLI_OK;
}

/* ---- migrate -------------------------------------------------------------------------------- */

static const char MIGRATE_USAGE[] =
    "Usage: wf migrate [--force]\n"
    "\n"
    "Moves the data in Redis from an older wf's schema to this wf's: the step between stopping\n"
    "the older wf's workers and starting this one's (docs/upgrading.md). No run is rewritten,\n"
    "lost or run twice. Safe to run again. Prints what it did, or with --json {\"from\": N,\n"
    "\"to\": N, \"workflows\": N}.\n"
    "\n"
    "Options:\n"
    "  --force        migrate even though worker processes look alive (their heartbeats are\n"
    "                 fresh): only when you know they are gone\n"
    "  --redis URL, --json, --help   as for every command (see `wf --help`)\n";

int wf__cli_cmd_migrate(wf__cli *cli, int argc, char **argv)
{
    int force;
    if (wf__cli_force_only(cli, argc, argv, &force) != WF_CLI_OK) return WF_CLI_USAGE;
    int done;
    if (wf__cli_args(cli, argc, "migrate", MIGRATE_USAGE, 0, 0, "migrate takes no arguments",
                     &done))
        return done;
    wf_migrate_result res = {0};
    wf_error err = {0};
    /* Not through the usual connect: that refuses a Redis of another schema, which is the point. */
    if (wf_migrate(cli->redis_url, force, &res, &err) != WF_OK) return wf__cli_fail(&err);
    if (cli->json)
        return wf__cli_print_json(json_pack("{s:i, s:i, s:I}", "from", res.from, "to", res.to,
                                            "workflows", (json_int_t)res.workflows));
    if (res.from == res.to)
        printf("schema %d already: nothing to migrate\n", res.to);
    else if (res.from == 0)
        printf("empty Redis: schema %d written\n", res.to);
    else
        printf("migrated %zu workflow%s from schema %d to %d\n", res.workflows,
               res.workflows == 1 ? "" : "s", res.from, res.to);
    return WF_CLI_OK;
}
