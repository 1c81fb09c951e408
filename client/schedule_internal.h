/* schedule_internal.h - what libwf shares with the worker's scheduler (worker/scheduler.c), the
 * CLI and the tests about schedules: the spec parser and stepper (cron.c), the catch-up plan, and
 * the schedule record kept in P:{W}:schedules (schedule.c).
 *
 * Design: a schedule belongs to one workflow and lives in that workflow's slot ({W}), so firing it
 * (lua/fire.lua: compare-and-set on next_at, create the run, move next_at) is one atomic script on
 * one slot. Lua never interprets a spec: the firing worker computes the next fire time in C and
 * passes it. The run id is deterministic, "W:sched-<id>-<fire_ms>", so the same firing can never
 * start two runs, however many workers race for it.
 */
#ifndef WF_SCHEDULE_INTERNAL_H
#define WF_SCHEDULE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "wf_internal.h"

#define WF__SCHED_ID_MAX   64  /* schedule id: [A-Za-z0-9._-]{1,64} */
#define WF__SCHED_SPEC_MAX 128 /* longest spec accepted */
/* Under catch-up "none", a firing later than this (or with a later firing already due) counts as
 * missed and is skipped. */
#define WF__SCHED_GRACE_MS 60000
/* Shortest @every interval. */
#define WF__SCHED_MIN_EVERY_MS 1000

/* ---- Specs (cron.c) ------------------------------------------------------------------------- */

/* A parsed spec: a 5-field cron expression (UTC) or a fixed interval. */
typedef struct wf__cron {
    int64_t every_ms; /* > 0: "@every DUR", the fields below are unused */
    uint64_t minute;  /* bit m: minute m (0-59) matches */
    uint32_t hour;    /* bits 0-23 */
    uint32_t dom;     /* bits 1-31: day of month */
    uint32_t month;   /* bits 1-12 */
    uint32_t dow;     /* bits 0-6: day of week, Sunday 0 (7 is folded into 0) */
    int dom_star;     /* the day-of-month field started with '*' */
    int dow_star;     /* the day-of-week field started with '*'. Both restricted (neither star):
                         a day matches when EITHER field does (Vixie cron); else both must */
} wf__cron;

/* Parses `spec`: "MIN HOUR DOM MONTH DOW" (each `*`, N, N-M, lists with ',', steps with '/';
 * month and day names jan..dec, sun..sat), @yearly, @annually, @monthly, @weekly, @daily,
 * @midnight, @hourly, or "@every DUR" (DUR: numbers with units ms, s, m, h, d, e.g. "1h30m";
 * at least 1 s). Returns WF_OK or WF_ERR_INVALID with a message naming the bad part. */
int wf__cron_parse(const char *spec, wf__cron *out, wf_error *err);

/* The first cron match strictly after `after_ms` (ms since the epoch, UTC), in whole minutes;
 * -1 when the expression matches nothing in the next 8 years (e.g. "0 0 31 2 *"). */
int64_t wf__cron_next(const wf__cron *c, int64_t after_ms);

/* The first fire time strictly after `after_ms`. Intervals step from `anchor_ms` (the schedule's
 * previous fire time, or its creation), so they keep their phase; cron ignores the anchor.
 * -1 for a cron expression that never matches. */
int64_t wf__sched_next(const wf__cron *c, int64_t anchor_ms, int64_t after_ms);

/* What to do with a due firing at `due_ms` (<= now_ms) under `policy`: sets *fire to 1 when a run
 * starts for it, and *next to the schedule's following next_at (-1: never again).
 *   all   every missed firing gets its run: fire, next = the firing after due_ms
 *   one   one run stands for all missed firings: fire, next = the first firing after now
 *   none  missed firings are skipped: fire only when on time (no later firing due yet and at most
 *         WF__SCHED_GRACE_MS late), next = the first firing after now */
void wf__sched_plan(const wf__cron *c, wf_catch_up policy, int64_t due_ms, int64_t now_ms,
                    int *fire, int64_t *next);

/* ---- The record (schedule.c) ----------------------------------------------------------------- */

/* A schedule as stored (msgpack map, the value of field `id` in P:{W}:schedules). fire.lua reads
 * and rewrites it with cmsgpack: next_at, last_at, fires and last_run change at every firing. */
typedef struct wf__sched_rec {
    char workflow[WF__NAME_MAX + 1];
    char spec[WF__SCHED_SPEC_MAX + 1];
    const char *payload; /* msgpack bytes, borrowed from the decoded buffer; NULL/0: none */
    size_t payload_len;
    wf_catch_up catch_up;
    int64_t created_at; /* Redis ms */
    int64_t next_at;    /* the next fire time; also the score in P:{W}:schedules:due */
    int64_t last_at;    /* the last firing handled (0: none yet) */
    long long fires;    /* runs started so far */
    char last_run[WF__ID_MAX];
    int64_t paused_at; /* Redis ms of wf_schedule_pause; 0: not paused (schedule_ctl.lua) */
} wf__sched_rec;

/* Packs `rec` into `out` (caller-owned, initialised). Returns WF_OK or WF_ERR_NOMEM. */
int wf__sched_encode(const wf__sched_rec *rec, msgpack_sbuffer *out);
/* Decodes a record; rec->payload points into `data`. Returns WF_OK or WF_ERR_BAD_PAYLOAD. */
int wf__sched_decode(const void *data, size_t len, wf__sched_rec *rec, wf_error *err);

/* 1 if `id` is a valid schedule id, else 0. */
int wf__sched_id_valid(const char *id);

/* The run id of the firing of schedule `id` at `fire_ms`: "W:sched-<id>-<fire_ms>" (out:
 * WF__ID_MAX bytes). */
void wf__sched_run_id(const char *workflow, const char *id, int64_t fire_ms, char *out);

#endif
