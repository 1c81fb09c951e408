/* client.c - the wf_client handle: connecting, reconnecting, and the registered-workflow check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "cluster.h"

static wf__rc *open_conn(const wf__url *url, wf_error *err)
{
    wf__rc *c = wf__rc_open(url, err);
    if (!c) return NULL;
    if (wf__schema_check(c, url->prefix, err) != WF_OK) {
        wf__rc_free(c);
        return NULL;
    }
    if (wf__functions_load(c, err) != WF_OK) {
        wf__rc_free(c);
        return NULL;
    }
    return c;
}

wf_client *wf_client_connect(const char *url, wf_error *err)
{
    wf_client *client = calloc(1, sizeof *client);
    if (!client) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (wf__url_parse(url, &client->url, err) != WF_OK) {
        free(client);
        return NULL;
    }
    client->c = open_conn(&client->url, err);
    if (!client->c) {
        wf__url_free(&client->url);
        free(client);
        return NULL;
    }
    return client;
}

void wf_client_free(wf_client *client)
{
    if (!client) return;
    wf__defer_free(client);
    wf__rc_free(client->c);
    for (size_t i = 0; i < client->nknown; i++) free(client->known[i]);
    free(client->known);
    wf__url_free(&client->url);
    free(client);
}

const char *wf_client_prefix(const wf_client *client)
{
    return client->url.prefix;
}

const char *wf_client_url(const wf_client *client)
{
    return client->url.redacted;
}

wf__rc *wf__client_redis(wf_client *client)
{
    return client->c;
}

const wf__url *wf__client_url(const wf_client *client)
{
    return &client->url;
}

int wf__client_reconnect(wf_client *client, wf_error *err)
{
    wf__rc_free(client->c);
    client->c = open_conn(&client->url, err);
    return client->c ? WF_OK : (err ? err->code : WF_ERR_CONNECT);
}

int wf__client_ensure(wf_client *client, wf_error *err)
{
    if (client->c && !wf__rc_broken(client->c)) return WF_OK;
    return wf__client_reconnect(client, err);
}

redisReply *wf__client_cmd(wf_client *client, int idempotent, wf_error *err, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (wf__client_ensure(client, err) != WF_OK) return NULL;
        va_list ap;
        va_start(ap, fmt);
        char *cmd = NULL;
        int len = redisvFormatCommand(&cmd, fmt, ap);
        va_end(ap);
        if (len < 0) {
            wf_error_set(err, WF_ERR_NOMEM, "out of memory formatting a command");
            return NULL;
        }
        redisReply *r = wf__rc_formatted(client->c, cmd, (size_t)len);
        if (r) {
            if (r->type == REDIS_REPLY_ERROR) {
                wf__script_error(r->str, r->len, err);
                freeReplyObject(r);
                return NULL;
            }
            return r;
        }
        wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s", wf__rc_errstr(client->c));
        if (!idempotent) return NULL;
    }
    return NULL;
}

int wf_client_ping(wf_client *client, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    redisReply *r = wf__client_cmd(client, 1, err, "PING");
    if (!r) return err ? err->code : WF_ERR_IO;
    freeReplyObject(r);
    return WF_OK;
}

int wf__client_check_workflow(wf_client *client, const char *name, wf_error *err)
{
    for (size_t i = 0; i < client->nknown; i++)
        if (strcmp(client->known[i], name) == 0) return WF_OK;
    char *key = wf__key_global(client->url.prefix, "workflows");
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__client_cmd(client, 1, err, "HEXISTS %s %s", key, name);
    free(key);
    if (!r) return err ? err->code : WF_ERR_IO;
    int exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!exists)
        return wf_error_set(err, WF_ERR_UNKNOWN_WORKFLOW,
                            "unknown workflow '%s': no worker has registered it under prefix "
                            "'%s' (check the name, or start a worker that defines it)",
                            name, client->url.prefix);
    char **k = realloc(client->known, sizeof(char *) * (client->nknown + 1));
    if (!k) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    client->known = k;
    if ((k[client->nknown] = strdup(name))) client->nknown++;
    return WF_OK;
}

int wf__client_pipeline(wf_client *client, size_t n, const char *const *const *cmds,
                        redisReply **out, wf_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        /* Returns the code it got, not err->code: with err NULL that read would not exist, and
         * clang-analyzer could not tell an error from WF_OK (and `out` from filled). */
        int rc = wf__client_ensure(client, err);
        if (rc != WF_OK) return rc;
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            int argc = 0;
            while (cmds[i][argc]) argc++;
            ok = wf__rc_append_argv(client->c, argc, (const char **)cmds[i], NULL) == REDIS_OK;
        }
        size_t got = 0;
        for (; ok && got < n; got++) {
            void *r = NULL;
            if (wf__rc_get_reply(client->c, &r) != REDIS_OK || !r) ok = 0;
            out[got] = r;
            if (!ok) break;
        }
        if (ok) return WF_OK;
        for (size_t i = 0; i < got; i++) freeReplyObject(out[i]);
        memset(out, 0, n * sizeof *out);
        wf_error_set(err, WF_ERR_IO, "Redis connection failed: %s",
                     client->c && wf__rc_errstr(client->c)[0] ? wf__rc_errstr(client->c)
                                                              : "no reply");
        wf__rc_break(client->c); /* reconnect on the next try */
    }
    return WF_ERR_IO;
}

int wf__client_time(wf_client *client, int64_t *now, wf_error *err)
{
    redisReply *r = wf__client_cmd(client, 1, err, "TIME");
    if (!r) return err ? err->code : WF_ERR_IO;
    int rc = WF_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
        *now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
               strtoll(r->element[1]->str, NULL, 10) / 1000;
    else
        rc = wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply to TIME");
    freeReplyObject(r);
    return rc;
}
