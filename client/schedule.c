/* schedule.c - schedules (include/wf/client.h, "Schedules"): the record kept per schedule in
 * P:{W}:schedules, and adding, removing and listing them. Firing is the worker's
 * (worker/scheduler.c + lua/fire.lua); specs are parsed in cron.c.
 *
 * Keys, both tagged by the target workflow so that firing touches one slot:
 *   P:{W}:schedules       hash  schedule id -> msgpack record (wf__sched_rec)
 *   P:{W}:schedules:due   zset  schedule id -> next fire time (Redis ms)
 */
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"
#include "schedule_internal.h"

/* ---- Names ---------------------------------------------------------------------------------- */

static const char *const CATCH_UP_NAMES[] = {"one", "all", "none"};

const char *wf_catch_up_name(wf_catch_up policy)
{
    return (int)policy >= 0 && (int)policy < 3 ? CATCH_UP_NAMES[policy] : "one";
}

int wf_catch_up_from_name(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, CATCH_UP_NAMES[i]) == 0) return i;
    return -1;
}

int wf__sched_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > WF__SCHED_ID_MAX) return 0;
    return wf__suffix_valid(id);
}

void wf__sched_run_id(const char *workflow, const char *id, int64_t fire_ms, char *out)
{
    snprintf(out, WF__ID_MAX, "%s:sched-%s-%lld", workflow, id, (long long)fire_ms);
}

/* ---- The record ------------------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    pack_str(pk, k);
}

int wf__sched_encode(const wf__sched_rec *rec, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int n = 9 + (rec->last_run[0] ? 1 : 0) + (rec->paused_at ? 1 : 0);
    int rc = msgpack_pack_map(&pk, (size_t)n);
    pack_key(&pk, "v");
    msgpack_pack_int(&pk, 1);
    pack_key(&pk, "workflow");
    pack_str(&pk, rec->workflow);
    pack_key(&pk, "spec");
    pack_str(&pk, rec->spec);
    pack_key(&pk, "payload"); /* a str, not a bin: Redis's Lua cmsgpack cannot read bin */
    msgpack_pack_str(&pk, rec->payload_len);
    msgpack_pack_str_body(&pk, rec->payload ? rec->payload : "", rec->payload_len);
    pack_key(&pk, "catch_up");
    pack_str(&pk, wf_catch_up_name(rec->catch_up));
    pack_key(&pk, "created_at");
    msgpack_pack_int64(&pk, rec->created_at);
    pack_key(&pk, "next_at");
    msgpack_pack_int64(&pk, rec->next_at);
    pack_key(&pk, "last_at");
    msgpack_pack_int64(&pk, rec->last_at);
    pack_key(&pk, "fires");
    msgpack_pack_long_long(&pk, rec->fires);
    if (rec->last_run[0]) {
        pack_key(&pk, "last_run");
        pack_str(&pk, rec->last_run);
    }
    if (rec->paused_at) {
        pack_key(&pk, "paused");
        msgpack_pack_int64(&pk, rec->paused_at);
    }
    return rc == 0 && out->data ? WF_OK : WF_ERR_NOMEM;
}

static int obj_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        *out = (int64_t)o->via.f64; /* Lua's cmsgpack may write whole floats */
    else
        return -1;
    return 0;
}

/* A str (what wf writes; fire.lua's cmsgpack keeps it a str) or a bin. */
static int obj_bytes(const msgpack_object *o, const char **p, size_t *n)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *n = o->via.bin.size;
    } else {
        return -1;
    }
    return 0;
}

static int copy_str(const msgpack_object *o, char *dst, size_t size)
{
    const char *p;
    size_t n;
    if (obj_bytes(o, &p, &n) != 0 || n >= size || memchr(p, '\0', n)) return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* Fills `rec` from the decoded map `root`. */
static int decode_obj(const msgpack_object *root, wf__sched_rec *rec, wf_error *err)
{
    memset(rec, 0, sizeof *rec);
    if (root->type != MSGPACK_OBJECT_MAP)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "schedule record is not a map");
    int have_spec = 0, have_next = 0;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key, *v = &root->via.map.ptr[i].val;
        const char *kp;
        size_t kn;
        if (obj_bytes(k, &kp, &kn) != 0) continue;
#define KEY_IS(s) (kn == sizeof(s) - 1 && memcmp(kp, s, kn) == 0)
        int bad = 0;
        if (KEY_IS("workflow")) {
            bad = copy_str(v, rec->workflow, sizeof rec->workflow);
        } else if (KEY_IS("spec")) {
            bad = copy_str(v, rec->spec, sizeof rec->spec);
            have_spec = !bad;
        } else if (KEY_IS("payload")) {
            bad = v->type != MSGPACK_OBJECT_NIL && obj_bytes(v, &rec->payload, &rec->payload_len);
            if (rec->payload_len == 0) rec->payload = NULL;
        } else if (KEY_IS("catch_up")) {
            char name[8];
            int p = copy_str(v, name, sizeof name) == 0 ? wf_catch_up_from_name(name) : -1;
            rec->catch_up = p < 0 ? WF_CATCH_UP_ONE : (wf_catch_up)p;
        } else if (KEY_IS("created_at")) {
            bad = obj_int(v, &rec->created_at);
        } else if (KEY_IS("next_at")) {
            bad = obj_int(v, &rec->next_at);
            have_next = !bad;
        } else if (KEY_IS("last_at")) {
            bad = obj_int(v, &rec->last_at);
        } else if (KEY_IS("fires")) {
            int64_t f = 0;
            bad = obj_int(v, &f);
            rec->fires = f;
        } else if (KEY_IS("last_run")) {
            bad = copy_str(v, rec->last_run, sizeof rec->last_run);
        } else if (KEY_IS("paused")) {
            bad = v->type != MSGPACK_OBJECT_NIL && obj_int(v, &rec->paused_at);
        }
#undef KEY_IS
        if (bad)
            return wf_error_set(err, WF_ERR_BAD_PAYLOAD,
                                "schedule record field '%.*s' is malformed",
                                (int)(kn > 32 ? 32 : kn), kp);
    }
    if (!have_spec || !have_next)
        return wf_error_set(err, WF_ERR_BAD_PAYLOAD, "schedule record lacks spec or next_at");
    return WF_OK;
}

int wf__sched_decode(const void *data, size_t len, wf__sched_rec *rec, wf_error *err)
{
    /* msgpack_unpack_next references str/bin bodies in `data` (no copy), so rec->payload stays
     * valid after the unpacked object is destroyed, for as long as `data` lives. */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc;
    if (msgpack_unpack_next(&up, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        rc = wf_error_set(err, WF_ERR_BAD_PAYLOAD, "schedule record is not one msgpack value");
    else
        rc = decode_obj(&up.data, rec, err);
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* ---- Adding and removing -------------------------------------------------------------------- */

/* Runs the `n` commands (argvs[i], argvlens[i], argcs[i]) as one MULTI/EXEC transaction, pipelined
 * on the client's connection and retried once after a reconnect (each transaction here is
 * idempotent). Returns EXEC's reply (caller frees) or NULL with `err` filled. */
static redisReply *transact(wf_client *client, int n, const char **argvs[],
                            const size_t *argvlens[], const int *argcs, wf_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (wf__client_ensure(client, err) != WF_OK) return NULL;
        wf__rc *c = client->c;
        /* MULTI and EXEC have no key: they must reach the node of the keys in between. */
        wf__rc_pin(c, n > 0 && argcs[0] > 1 ? argvs[0][1] : NULL);
        wf__rc_append(c, "MULTI");
        for (int i = 0; i < n; i++) wf__rc_append_argv(c, argcs[i], argvs[i], argvlens[i]);
        wf__rc_append(c, "EXEC");
        wf__rc_pin(c, NULL);
        redisReply *last = NULL;
        int ok = 1;
        for (int i = 0; i < n + 2; i++) {
            redisReply *r = NULL;
            if (wf__rc_get_reply(c, (void **)&r) != REDIS_OK) {
                ok = 0;
                break;
            }
            if (i == n + 1)
                last = r;
            else
                freeReplyObject(r);
        }
        if (ok && last && last->type == REDIS_REPLY_ARRAY) return last;
        if (ok && last) {
            if (last->type == REDIS_REPLY_ERROR)
                wf__script_error(last->str, last->len, err);
            else
                wf_error_set(err, WF_ERR_PROTOCOL, "transaction aborted");
            freeReplyObject(last);
            return NULL;
        }
        if (last) freeReplyObject(last);
        wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", wf__rc_errstr(c));
        wf__rc_free(client->c);
        client->c = NULL;
    }
    return NULL;
}

int wf_schedule_add_ex(wf_client *client, const char *id, const char *workflow, const char *spec,
                       const void *payload, size_t len, const wf_schedule_options *options,
                       wf_error *err)
{
    int rc = wf__check_start(client, workflow, payload, len, err);
    if (rc != WF_OK) return rc;
    if (!wf__sched_id_valid(id))
        return wf_error_set(err, WF_ERR_INVALID,
                            "invalid schedule id '%.64s': use 1-%d characters of [A-Za-z0-9._-]",
                            id ? id : "(null)", WF__SCHED_ID_MAX);
    wf__cron cron;
    if ((rc = wf__cron_parse(spec, &cron, err)) != WF_OK) return rc;
    wf_catch_up policy = options ? options->catch_up : WF_CATCH_UP_ONE;
    if ((int)policy < 0 || (int)policy > WF_CATCH_UP_NONE)
        return wf_error_set(err, WF_ERR_INVALID, "unknown catch-up policy %d", (int)policy);
    if ((rc = wf__client_check_workflow(client, workflow, err)) != WF_OK) return rc;
    int64_t now = 0;
    if ((rc = wf__client_time(client, &now, err)) != WF_OK) return rc;

    wf__sched_rec rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.workflow, sizeof rec.workflow, "%s", workflow);
    snprintf(rec.spec, sizeof rec.spec, "%s", spec);
    rec.payload = payload;
    rec.payload_len = len;
    rec.catch_up = policy;
    rec.created_at = now;
    rec.next_at = wf__sched_next(&cron, now, now);
    if (rec.next_at < 0)
        return wf_error_set(err, WF_ERR_INVALID,
                            "cron spec '%.60s' never matches a date (e.g. February 30)", spec);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char *hkey = wf__key_wf(client->url.prefix, workflow, "schedules");
    char *zkey = wf__key_wf(client->url.prefix, workflow, "schedules:due");
    if (!hkey || !zkey || wf__sched_encode(&rec, &sb) != WF_OK) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        goto out;
    }
    char score[24];
    snprintf(score, sizeof score, "%lld", (long long)rec.next_at);
    const char *hset[] = {"HSET", hkey, id, sb.data};
    size_t hlen[] = {4, strlen(hkey), strlen(id), sb.size};
    const char *zadd[] = {"ZADD", zkey, score, id};
    size_t zlen[] = {4, strlen(zkey), strlen(score), strlen(id)};
    const char **argvs[] = {hset, zadd};
    const size_t *lens[] = {hlen, zlen};
    int argcs[] = {4, 4};
    redisReply *r = transact(client, 2, argvs, lens, argcs, err);
    if (!r)
        rc = err ? err->code : WF_ERR_IO;
    else
        freeReplyObject(r);
out:
    msgpack_sbuffer_destroy(&sb);
    free(hkey);
    free(zkey);
    return rc;
}

int wf_schedule_add(wf_client *client, const char *id, const char *workflow, const char *spec,
                    const void *payload, size_t len, wf_error *err)
{
    return wf_schedule_add_ex(client, id, workflow, spec, payload, len, NULL, err);
}

/* Removes `id` from one workflow; sets *found. */
static int remove_one(wf_client *client, const char *workflow, const char *id, int *found,
                      wf_error *err)
{
    char *hkey = wf__key_wf(client->url.prefix, workflow, "schedules");
    char *zkey = wf__key_wf(client->url.prefix, workflow, "schedules:due");
    int rc = WF_OK;
    if (!hkey || !zkey) {
        rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    } else {
        const char *hdel[] = {"HDEL", hkey, id};
        const char *zrem[] = {"ZREM", zkey, id};
        size_t hlen[] = {4, strlen(hkey), strlen(id)};
        size_t zlen[] = {4, strlen(zkey), strlen(id)};
        const char **argvs[] = {hdel, zrem};
        const size_t *lens[] = {hlen, zlen};
        int argcs[] = {3, 3};
        redisReply *r = transact(client, 2, argvs, lens, argcs, err);
        if (!r) {
            rc = err ? err->code : WF_ERR_IO;
        } else {
            *found = r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER &&
                     r->element[0]->integer > 0;
            freeReplyObject(r);
        }
    }
    free(hkey);
    free(zkey);
    return rc;
}

int wf_schedule_remove(wf_client *client, const char *workflow, const char *id, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!wf__sched_id_valid(id))
        return wf_error_set(err, WF_ERR_INVALID, "invalid schedule id '%.64s'", id ? id : "(null)");
    if (workflow && !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'", workflow);
    int found = 0, rc = WF_OK;
    if (workflow) {
        rc = remove_one(client, workflow, id, &found, err);
    } else {
        char **names = NULL;
        size_t n = 0;
        rc = wf_list_workflows(client, &names, &n, err);
        for (size_t i = 0; rc == WF_OK && i < n; i++) {
            int f = 0;
            rc = remove_one(client, names[i], id, &f, err);
            found |= f;
        }
        wf_list_free(names, n);
    }
    if (rc == WF_OK && !found)
        rc = wf_error_set(err, WF_ERR_NOT_FOUND, "no schedule '%s'%s%s", id,
                          workflow ? " of workflow " : "", workflow ? workflow : "");
    return rc;
}

/* ---- Listing -------------------------------------------------------------------------------- */

void wf_schedules_free(wf_schedule_info *s, size_t n)
{
    static const size_t strs[] = {
        offsetof(wf_schedule_info, id), offsetof(wf_schedule_info, workflow),
        offsetof(wf_schedule_info, spec), offsetof(wf_schedule_info, payload),
        offsetof(wf_schedule_info, last_run)};
    wf__records_free(s, n, sizeof *s, strs, sizeof strs / sizeof *strs);
}

static int info_from(const redisReply *id, const redisReply *val, const char *workflow,
                     wf_schedule_info *out)
{
    wf__sched_rec rec;
    memset(out, 0, sizeof *out);
    if (id->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING ||
        wf__sched_decode(val->str, val->len, &rec, NULL) != WF_OK) {
        /* Keep it visible even when unreadable: the operator should see and remove it. */
        out->id = strndup(id->str ? id->str : "", id->len);
        out->workflow = strdup(workflow);
        out->spec = strdup("(unreadable record)");
        return out->id && out->workflow && out->spec ? WF_OK : WF_ERR_NOMEM;
    }
    out->id = strndup(id->str, id->len);
    out->workflow = strdup(workflow);
    out->spec = strdup(rec.spec);
    if (rec.payload_len) {
        out->payload = malloc(rec.payload_len);
        if (out->payload) memcpy(out->payload, rec.payload, rec.payload_len);
        out->payload_len = rec.payload_len;
    }
    out->catch_up = rec.catch_up;
    out->created_at_ms = rec.created_at;
    out->next_at_ms = rec.next_at;
    out->last_at_ms = rec.last_at;
    out->fires = rec.fires;
    out->paused = rec.paused_at != 0;
    if (rec.last_run[0]) out->last_run = strdup(rec.last_run);
    if (!out->id || !out->workflow || !out->spec || (rec.payload_len && !out->payload) ||
        (rec.last_run[0] && !out->last_run))
        return WF_ERR_NOMEM;
    return WF_OK;
}

static int by_workflow_id(const void *a, const void *b)
{
    const wf_schedule_info *x = a, *y = b;
    int c = strcmp(x->workflow, y->workflow);
    return c ? c : strcmp(x->id, y->id);
}

int wf_schedule_list(wf_client *client, const char *workflow, wf_schedule_info **schedules,
                     size_t *n, wf_error *err)
{
    if (!client || !schedules || !n) return wf_error_set(err, WF_ERR_INVALID, "NULL argument");
    *schedules = NULL;
    *n = 0;
    if (workflow && !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'", workflow);
    char **names = NULL;
    size_t nnames = 0;
    int rc = WF_OK;
    if (workflow) {
        names = calloc(1, sizeof *names);
        if (!names || !(names[0] = strdup(workflow)))
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        else
            nnames = 1;
    } else {
        rc = wf_list_workflows(client, &names, &nnames, err);
    }
    wf_schedule_info *out = NULL;
    size_t count = 0, cap = 0;
    for (size_t i = 0; rc == WF_OK && i < nnames; i++) {
        char *hkey = wf__key_wf(client->url.prefix, names[i], "schedules");
        if (!hkey) {
            rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
            break;
        }
        redisReply *r = wf__client_cmd(client, 1, err, "HGETALL %s", hkey);
        free(hkey);
        if (!r) {
            rc = err ? err->code : WF_ERR_IO;
            break;
        }
        for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements && rc == WF_OK;
             k += 2) {
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                wf_schedule_info *g = realloc(out, ncap * sizeof *g);
                if (!g) {
                    rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
                    break;
                }
                memset(g + cap, 0, (ncap - cap) * sizeof *g);
                out = g;
                cap = ncap;
            }
            if (info_from(r->element[k], r->element[k + 1], names[i], &out[count++]) != WF_OK)
                rc = wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        }
        freeReplyObject(r);
    }
    wf_list_free(names, nnames);
    if (rc != WF_OK) {
        wf_schedules_free(out, count);
        return rc;
    }
    if (count > 1) qsort(out, count, sizeof *out, by_workflow_id);
    *schedules = out;
    *n = count;
    return WF_OK;
}
