/* migrate.c - wf_migrate: moving the data of an older wf's schema in Redis to this one's, the
 * step between stopping the old workers and starting the new (docs/upgrading.md).
 *
 * It connects without the schema check that wf_client_connect makes (the point is that the
 * schema differs), refuses while workers are alive (an old worker would not read what new clients
 * write), runs lua/migrate.lua once per registered workflow (one slot each), and writes P:schema
 * last, so an interrupted migration is simply run again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"

/* The schema version P:schema holds: 0 none (an empty Redis), -1 not a number; WF_OK or an I/O
 * error. */
static int schema_of(wf__rc *c, const char *key, long *version, wf_error *err)
{
    redisReply *r = wf__rc_command(c, "GET %s", key);
    if (!r) return wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", wf__rc_errstr(c));
    *version = 0;
    if (r->type == REDIS_REPLY_STRING) {
        char *end = NULL;
        *version = strtol(r->str, &end, 10);
        if (!end || *end || *version <= 0) *version = -1;
    }
    freeReplyObject(r);
    return WF_OK;
}

/* Refuses while a worker is alive: its heartbeat in P:workers is fresh. */
static int no_live_workers(wf_client *client, wf_error *err)
{
    wf_worker_info *ws = NULL;
    size_t n = 0;
    int rc = wf_list_workers(client, 0, &ws, &n, err);
    if (rc != WF_OK) return rc;
    if (n > 0)
        rc = wf_error_set(err, WF_ERR_STATE,
                          "%zu worker process%s still alive (e.g. %s on %s): stop every worker of "
                          "the older wf before migrating (or pass force if they are gone)",
                          n, n == 1 ? " is" : "es are", ws[0].name ? ws[0].name : "?",
                          ws[0].host ? ws[0].host : "?");
    wf_workers_free(ws, n);
    return rc;
}

static int migrate_workflow(wf_client *client, const char *name, wf_migrate_result *res,
                            wf_error *err)
{
    wf__wfkeys wk;
    if (wf__wfkeys_init(&wk, client->url.prefix, name) != WF_OK)
        return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__script_call(client->c, WF__SCRIPT_MIGRATE, WF__NFIXED,
                                    (const char *const *)wk.k, 0, NULL, NULL, err);
    wf__wfkeys_free(&wk);
    if (!r) return err ? err->code : WF_ERR_IO;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        res->queued_index += (size_t)r->element[0]->integer;
        res->running_index += (size_t)r->element[1]->integer;
    }
    freeReplyObject(r);
    res->workflows++;
    return WF_OK;
}

static int migrate_on(wf_client *client, int force, wf_migrate_result *res, wf_error *err)
{
    char *key = wf__key_global(client->url.prefix, "schema");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    long from = 0;
    int rc = schema_of(client->c, key, &from, err);
    res->from = (int)from;
    res->to = WF__SCHEMA_VERSION;
    if (rc == WF_OK && (from < 0 || from > WF__SCHEMA_VERSION))
        rc = wf_error_set(err, WF_ERR_SCHEMA,
                          "Redis key %s holds schema %ld, which this wf (schema %d) cannot "
                          "migrate: upgrade wf",
                          key, from, WF__SCHEMA_VERSION);
    if (rc == WF_OK && from > 0 && from < WF__SCHEMA_VERSION) {
        if (!force) rc = no_live_workers(client, err);
        char **names = NULL;
        size_t n = 0;
        if (rc == WF_OK) rc = wf_list_workflows(client, &names, &n, err);
        for (size_t i = 0; rc == WF_OK && i < n; i++)
            rc = migrate_workflow(client, names[i], res, err);
        wf_list_free(names, n);
    }
    if (rc == WF_OK && from != WF__SCHEMA_VERSION) {
        /* Last: until here a repeated run starts over, and nothing of schema 2 reads the keys. */
        redisReply *r = wf__rc_command(client->c, "SET %s %d", key, WF__SCHEMA_VERSION);
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = r ? wf__script_error(r->str, r->len, err)
                   : wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s",
                                  wf__rc_errstr(client->c));
        if (r) freeReplyObject(r);
    }
    free(key);
    return rc;
}

int wf_migrate(const char *url, int force, wf_migrate_result *result, wf_error *err)
{
    wf_migrate_result res = {0};
    if (result) *result = res;
    wf_client client = {0};
    if (wf__url_parse(url, &client.url, err) != WF_OK) return err ? err->code : WF_ERR_INVALID;
    client.c = wf__rc_open(&client.url, err);
    int rc = client.c ? migrate_on(&client, force, &res, err) : (err ? err->code : WF_ERR_CONNECT);
    wf__rc_free(client.c);
    wf__url_free(&client.url);
    if (result) *result = res;
    return rc;
}
