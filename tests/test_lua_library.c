/* test_lua_library.c - the scripts as one Redis Functions library (cmake/embed_lua.cmake,
 * redis/scripts.c) against a real redis-server: every lua/NAME.lua but lib.lua and its parts
 * lib_*.lua is a function wf_NAME of the library `wf`, and nothing else is; what lib.lua keeps per
 * call (the state keys, the lanes, the outbox cache) is the call's own, never the previous call's;
 * a FUNCTION FLUSH (a restart without persistence) is healed by the next call; a full Redis
 * (maxmemory) still ends runs but starts none; and the version rule: an older or foreign library
 * `wf` is replaced, a newer build's kept. Shared set-up and helpers: lua_env.h.
 */
#include <dirent.h>
#include <stdio.h>

#include "lua_env.h"
#include "script_call.h"

/* FCALL wf_version 0: the loaded library's version (kept), or NULL when Redis has none. */
static const char *loaded_version(void)
{
    redisReply *r = wf_test_command(c, "FCALL wf_version 0");
    cr_assert_not_null(r);
    const char *v = r->type == REDIS_REPLY_STRING ? keep(strdup(r->str)) : NULL;
    if (!v)
        cr_assert(r->type == REDIS_REPLY_ERROR && strcmp(r->str, "ERR Function not found") == 0,
                  "wf_version: %s", r->type == REDIS_REPLY_ERROR ? r->str : "(not a string)");
    freeReplyObject(r);
    return v;
}

/* The function names of library `wf` (FUNCTION LIST LIBRARYNAME wf), into names[]; returns n. */
static int listed_functions(char names[][64], int max)
{
    redisReply *r = wf_test_command(c, "FUNCTION LIST LIBRARYNAME wf");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "one library named wf");
    redisReply *lib = r->element[0], *fns = NULL;
    for (size_t i = 0; i + 1 < lib->elements; i += 2)
        if (strcmp(lib->element[i]->str, "functions") == 0) fns = lib->element[i + 1];
    cr_assert_not_null(fns);
    int n = 0;
    for (size_t i = 0; i < fns->elements; i++) {
        redisReply *f = fns->element[i];
        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (strcmp(f->element[j]->str, "name") == 0) {
                cr_assert_lt(n, max);
                snprintf(names[n++], 64, "%s", f->element[j + 1]->str);
            }
    }
    freeReplyObject(r);
    return n;
}

static int has(char names[][64], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

Test(lua, every_script_in_lua_is_a_function_and_nothing_else)
{
    char names[64][64];
    int n = listed_functions(names, 64);
    cr_assert(has(names, n, "wf_version"));
    DIR *d = opendir(WF_SOURCE_DIR "/lua");
    cr_assert_not_null(d);
    int scripts = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        /* lib.lua and its parts lib_*.lua are the helpers, not scripts. */
        if (strcmp(e->d_name, "lib.lua") == 0 || strncmp(e->d_name, "lib_", 4) == 0) continue;
        char fn[80];
        snprintf(fn, sizeof fn, "wf_%.*s", (int)(len - 4), e->d_name);
        cr_assert(has(names, n, fn), "lua/%s is not the library's function %s", e->d_name, fn);
        scripts++;
    }
    closedir(d);
    cr_assert_eq(n, scripts + 1, "the library has %d functions: one per script and wf_version", n);
    cr_assert_eq(scripts, WF__SCRIPT_COUNT, "the C table knows every script");
    for (int i = 0; i < WF__SCRIPT_COUNT; i++)
        cr_assert(has(names, n, wf__script_get((wf__script)i)->fn), "%s",
                  wf__script_get((wf__script)i)->fn);
    cr_assert_str_eq(loaded_version(), wf__library_version);
}

Test(lua, function_flush_is_healed_by_the_next_call)
{
    redisReply *r = wf_test_command(c, "FUNCTION FLUSH");
    freeReplyObject(r);
    cr_assert_null(loaded_version(), "flushed");
    const char *id = run_id("healed");
    const char *keys[WF__NFIXED + 1];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
    keys[WF__NFIXED] = run_key(id);
    const char *args[] = {id, WFN, "in", "0"};
    wf_error err = {0};
    r = wf_test_script(c, WF__SCRIPT_ENQUEUE, WF__NFIXED + 1, keys, 4, args, NULL, &err);
    cr_assert_not_null(r, "the call loads the library and runs: %s", err.message);
    freeReplyObject(r);
    assert_state(id, "queued");
    cr_assert_str_eq(loaded_version(), wf__library_version);
}

/* Workflow "lt2"'s fixed keys and the enqueue of run `id` there (kept keys). */
static void enqueue_other(wf__wfkeys *k2, const char *id)
{
    const char *keys[WF__NFIXED + 1];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = k2->k[i];
    keys[WF__NFIXED] = keep(wf__key_run(PREFIX, "lt2", id));
    const char *args[] = {id, "lt2", "in", "600000"}; /* delayed: in the waiting index */
    redisReply *r = eval_argv(WF__SCRIPT_ENQUEUE, 0, WF__NFIXED + 1, keys, 4, args, NULL);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
}

Test(lua, what_lib_keeps_per_call_is_the_calls_own)
{
    /* The state keys and lanes come from each call's KEYS: two workflows, one after the other.
     * (Delayed runs: schema 2 indexes waiting runs, not queued ones.) */
    enqueue(run_id("a"), "600000", "waiting");
    wf__wfkeys k2;
    cr_assert_eq(wf__wfkeys_init(&k2, PREFIX, "lt2"), WF_OK);
    enqueue_other(&k2, "lt2:b");
    const char *q1 = wk.k[WF__K_STATE(WF_STATE_WAITING)], *q2 = k2.k[WF__K_STATE(WF_STATE_WAITING)];
    cr_assert_eq(wf_test_cmd_int(c, "ZCARD %s", q1), 1, "lt's index holds lt's run only");
    cr_assert_eq(wf_test_cmd_int(c, "ZCARD %s", q2), 1, "lt2's index holds lt2's run");
    cr_assert_geq(zscore(q2, "lt2:b"), 0);
    cr_assert_eq(wf_test_cmd_int(c, "ZCARD %s", k2.k[WF__K_DELAYED]), 1,
                 "lt2's timer in lt2's set");
    wf__wfkeys_free(&k2);
    enqueue(run_id("c"), "600000", "waiting");
    cr_assert_eq(wf_test_cmd_int(c, "ZCARD %s", q1), 2, "and back to lt's keys");

    /* notify 'auto' asks once per call whether the outbox exists: a call after it was created
     * must see it (a cache kept from the call before would say no). */
    const char *outbox = keep(wf__key_wf(PREFIX, WFN, "outbox"));
    const char *ids[2] = {run_id("d"), run_id("e")};
    for (int i = 0; i < 2; i++) {
        const char *token = enqueue_and_claim(ids[i], "60000");
        if (i == 1) wf_test_cmd_int(c, "XADD %s * created 1", outbox);
        redisReply *r = eval(WF__SCRIPT_COMPLETE, 3, run_key(ids[i]), steps_key(ids[i]), outbox,
                             ids[i], token, "out", RETENTION, "auto", NULL);
        expect_status_ok(r);
    }
    cr_assert_eq(wf_test_cmd_int(c, "XLEN %s", outbox), 2, "created, then run e's end");
}

Test(lua, on_a_full_redis_runs_end_and_nothing_new_starts)
{
    /* As with EVAL before: a script that moves or ends runs still runs (allow-oom), one that
     * adds a run is refused before it writes anything. */
    const char *id = run_id("full"), *token = enqueue_and_claim(id, "60000");
    wf_test_cmd_int(c, "HSET %s filler 1", run_key(run_id("filler"))); /* used memory > 1 */
    redisReply *set = wf_test_command(c, "CONFIG SET maxmemory-policy noeviction");
    freeReplyObject(set);
    set = wf_test_command(c, "CONFIG SET maxmemory 1");
    freeReplyObject(set);
    redisReply *done =
        eval(WF__SCRIPT_COMPLETE, 2, run_key(id), steps_key(id), id, token, "out", RETENTION, NULL);
    const char *nid = run_id("refused");
    redisReply *added = eval(WF__SCRIPT_ENQUEUE, 1, run_key(nid), nid, WFN, "in", "0", NULL);
    set = wf_test_command(c, "CONFIG SET maxmemory 0"); /* before asserting: a shared cluster */
    freeReplyObject(set);
    expect_status_ok(done);
    assert_state(id, "completed");
    expect_error(added, "OOM");
    cr_assert_null(hget(nid, "state"), "nothing of the refused run was written");
}

/* FUNCTION LOAD REPLACE of a library `wf` whose only function answers wf_version `v` (NULL: a
 * library `wf` without wf_version, as another program's could be). */
static void load_fake(const char *v)
{
    char src[256];
    if (v)
        snprintf(src, sizeof src,
                 "#!lua name=wf\nredis.register_function('wf_version', function() return '%s' "
                 "end)",
                 v);
    else
        snprintf(src, sizeof src,
                 "#!lua name=wf\nredis.register_function('other', function() "
                 "return 1 end)");
    redisReply *r = wf_test_command(c, "FUNCTION LOAD REPLACE %s", src);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
}

static void load_ours(void)
{
    wf_error err = {0};
    cr_assert_eq(wf_test_functions_load(c, &err), WF_OK, "%s", err.message);
}

/* Our version with its time moved by `dt` seconds and the hash `hash` (kept). */
static const char *ours_at(long long dt, const char *hash)
{
    long long v[3], t = 0;
    char h[16];
    cr_assert_eq(
        sscanf(wf__library_version, "%lld.%lld.%lld %lld %15s", &v[0], &v[1], &v[2], &t, h), 5,
        "%s", wf__library_version);
    char *s = NULL;
    cr_assert_gt(asprintf(&s, "%lld.%lld.%lld %lld %s", v[0], v[1], v[2], t + dt, hash), 0);
    return keep(s);
}

Test(lua, an_older_or_foreign_library_is_replaced_a_newer_build_kept)
{
    load_fake("0.0.1 0 000000000000");
    load_ours();
    cr_assert_str_eq(loaded_version(), wf__library_version, "an older release is replaced");
    load_fake(NULL);
    load_ours();
    cr_assert_str_eq(loaded_version(), wf__library_version, "a foreign `wf` is replaced");
    load_fake(ours_at(-60, "ffffffffffff"));
    load_ours();
    cr_assert_str_eq(loaded_version(), wf__library_version, "an earlier commit's is replaced");
    load_fake(ours_at(0, "ffffffffffff"));
    load_ours();
    cr_assert_str_eq(loaded_version(), wf__library_version, "uncommitted edits: the last wins");

    const char *later = ours_at(60, "ffffffffffff");
    load_fake(later);
    load_ours();
    cr_assert_str_eq(loaded_version(), later, "a later commit's is kept");
    load_fake("999.0.0 0 ffffffffffff");
    load_ours();
    cr_assert_str_eq(loaded_version(), "999.0.0 0 ffffffffffff", "a newer release is kept");
    /* The newer one lacks enqueue: the call fails, saying so, and replaces nothing. */
    const char *id = run_id("newer");
    const char *keys[WF__NFIXED + 1];
    for (int i = 0; i < WF__NFIXED; i++) keys[i] = wk.k[i];
    keys[WF__NFIXED] = run_key(id);
    const char *args[] = {id, WFN, "in", "0"};
    wf_error err = {0};
    cr_assert_null(
        wf_test_script(c, WF__SCRIPT_ENQUEUE, WF__NFIXED + 1, keys, 4, args, NULL, &err));
    cr_assert(strstr(err.message, "wf_enqueue"), "%s", err.message);
    cr_assert_str_eq(loaded_version(), "999.0.0 0 ffffffffffff");
    redisReply *r = wf_test_command(c, "FUNCTION FLUSH");
    freeReplyObject(r);
    load_ours(); /* for the shared cluster's next suite */
}

Test(lua, which_version_replaces_which)
{
    const char *ours = wf__library_version;
    cr_assert_eq(wf__library_replace(ours, strlen(ours)), 0);
    cr_assert_eq(wf__library_replace(NULL, 0), 1, "no wf_version: not a wf library");
    cr_assert_eq(wf__library_replace("junk", 4), 1);
    cr_assert_eq(wf__library_replace("0.0.0 0 abc", 11), 1);
    cr_assert_eq(wf__library_replace("999.0.0 0 abc", 13), 0);
    cr_assert_eq(wf__library_replace("0.999.0 0 abc", 13), 0, "minor counts before patch");
    const char *same_code = ours_at(3600, strrchr(ours, ' ') + 1);
    cr_assert_eq(wf__library_replace(same_code, strlen(same_code)), 0, "same sources: keep");
    const char *v[] = {ours_at(-1, "000000000000"), ours_at(0, "000000000000"),
                       ours_at(1, "000000000000")};
    cr_assert_eq(wf__library_replace(v[0], strlen(v[0])), 1, "an earlier commit");
    cr_assert_eq(wf__library_replace(v[1], strlen(v[1])), 1, "the same commit, other sources");
    cr_assert_eq(wf__library_replace(v[2], strlen(v[2])), 0, "a later commit");
}
