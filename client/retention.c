/* retention.c - a workflow's own retention of finished runs (include/wf/ops.h,
 * wf_workflow_retention_set): the hash P:{W}:keep, fields c_ms, c_last, c_none for completed runs
 * and f_ms, f_last, f_none for failed, cancelled and terminated ones. The scripts that end runs
 * read it (lua/lib_finish.lua keep_policy) in the call that ends them, so a setting holds across
 * every worker and client without a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

static int check_policy(const char *kind, const wf_retention *p, wf_error *err)
{
    if (!p) return WF_OK;
    if (p->keep_ms < 0 || p->keep_last < 0 || p->keep_none < 0 || p->keep_none > 1)
        return wf_error_set(err, WF_ERR_INVALID, "%s retention: figures must not be negative",
                            kind);
    if (p->keep_none && (p->keep_ms || p->keep_last))
        return wf_error_set(err, WF_ERR_INVALID,
                            "%s retention: keep_none keeps nothing, so keep_ms and keep_last "
                            "must be 0 with it",
                            kind);
    return WF_OK;
}

/* Appends to `argv` the HSET pairs of policy `p` of kind `k` ('c' or 'f'); its zero fields are
 * left out (the HDEL before the HSET has removed them). `buf` holds the numbers. */
static int policy_args(char k, const wf_retention *p, const char **argv, int n, char (*buf)[32])
{
    if (!p) return n;
    static const char *const names[2][3] = {{"c_ms", "c_last", "c_none"},
                                            {"f_ms", "f_last", "f_none"}};
    const char *const *nm = names[k == 'f'];
    long long v[3] = {(long long)p->keep_ms, (long long)p->keep_last, (long long)p->keep_none};
    for (int i = 0; i < 3; i++) {
        if (!v[i]) continue;
        snprintf(buf[n], sizeof buf[n], "%lld", v[i]);
        argv[n] = nm[i];
        argv[n + 1] = buf[n];
        n += 2;
    }
    return n;
}

int wf_workflow_retention_set(wf_client *client, const char *workflow,
                              const wf_retention *completed, const wf_retention *failed,
                              wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    int rc = check_policy("completed", completed, err);
    if (rc == WF_OK) rc = check_policy("failed", failed, err);
    if (rc != WF_OK) return rc;
    char *k = wf__key_wf(client->url.prefix, workflow, "keep");
    if (!k) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    /* One MULTI: the old policy goes and the new one comes at once, never half of each. */
    const char *multi[] = {"MULTI", NULL};
    const char *del[] = {"DEL", k, NULL};
    char buf[16][32];
    const char *hset[16] = {"HSET", k};
    int n = policy_args('f', failed, hset, policy_args('c', completed, hset, 2, buf), buf);
    hset[n] = NULL;
    const char *exec[] = {"EXEC", NULL};
    const char *const *cmds[4] = {multi, del, n > 2 ? hset : exec, exec};
    redisReply *r[4] = {0};
    size_t ncmds = n > 2 ? 4 : 3;
    rc = wf__client_pipeline(client, ncmds, cmds, r, err);
    for (size_t i = 0; i < ncmds; i++) {
        if (rc == WF_OK && r[i] && r[i]->type == REDIS_REPLY_ERROR)
            rc = wf__script_error(r[i]->str, r[i]->len, err);
        freeReplyObject(r[i]);
    }
    free(k);
    return rc;
}

static void read_policy(const redisReply *r, size_t at, wf_retention *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    const redisReply *v[3] = {r->element[at], r->element[at + 1], r->element[at + 2]};
    if (v[0]->type == REDIS_REPLY_STRING) p->keep_ms = strtoll(v[0]->str, NULL, 10);
    if (v[1]->type == REDIS_REPLY_STRING) p->keep_last = strtol(v[1]->str, NULL, 10);
    if (v[2]->type == REDIS_REPLY_STRING) p->keep_none = v[2]->str[0] == '1';
}

int wf_workflow_retention_get(wf_client *client, const char *workflow, wf_retention *completed,
                              wf_retention *failed, wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!workflow || !wf__name_valid(workflow))
        return wf_error_set(err, WF_ERR_BAD_NAME, "invalid workflow name '%.64s'",
                            workflow ? workflow : "(null)");
    char *k = wf__key_wf(client->url.prefix, workflow, "keep");
    if (!k) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r =
        wf__client_cmd(client, 1, err, "HMGET %s c_ms c_last c_none f_ms f_last f_none", k);
    free(k);
    if (!r) return err ? err->code : WF_ERR_IO;
    int rc = WF_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        rc = wf_error_set(err, WF_ERR_PROTOCOL, "unexpected reply to HMGET");
    } else {
        read_policy(r, 0, completed);
        read_policy(r, 3, failed);
    }
    freeReplyObject(r);
    return rc;
}
