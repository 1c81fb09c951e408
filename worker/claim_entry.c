/* claim_entry.c - reading the entries of one XREADGROUP / XAUTOCLAIM answer into the arguments
 * of one claim.lua call: which entries are runs (a record entry `r` of a run with a hash, or a
 * lean run's `c` and `p`, schema 2: lua/enqueue.lua) and which go to the dead-letter list, and why.
 * claim.c sends the call and takes its answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_worker_internal.h"

/* The value of one-letter field `name` of an entry's field list, or NULL. */
static const redisReply *entry_field(const redisReply *fields, char name)
{
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
        if (fields->element[f]->type == REDIS_REPLY_STRING && fields->element[f]->len == 1 &&
            fields->element[f]->str[0] == name &&
            fields->element[f + 1]->type == REDIS_REPLY_STRING)
            return fields->element[f + 1];
    return NULL;
}

/* The run id of entry `fields` of `def` into `id`: from its record (field `r`, a run with a hash)
 * or, for a lean run (fields `c` and `p`, lua/enqueue.lua), from its id suffix `c`; *input is the
 * lean run's input then (borrowed from `fields`). Returns 0 when the entry is a run, else -1 with
 * why it is not in `why` (`whylen` bytes, never left empty). */
static int entry_run(const wf__wdef *def, const redisReply *fields, char *id,
                     const redisReply **input, char *why, size_t whylen)
{
    char wfname[WF__NAME_MAX + 1];
    wf_error err = {0};
    const redisReply *rec = entry_field(fields, 'r'), *c = entry_field(fields, 'c');
    *input = NULL;
    if (c) {
        const redisReply *p = entry_field(fields, 'p');
        if (!p || c->len > WF__SUFFIX_MAX || memchr(c->str, '\0', c->len) ||
            !wf__suffix_valid(c->str)) {
            snprintf(why, whylen, "lean entry without a valid 'c' (run id) and 'p' (input)");
            return -1;
        }
        /* The handler's thread decodes the input with msgpack-c (executor.c): a forged one must
         * not reach it, since msgpack-c allocates for the counts it reads. Its size is not checked
         * against this worker's max_payload: the enqueuing client applied its own URL's limit. */
        wf_payload_limits lim = {p->len, 0};
        if (p->len > 0 && wf_msgpack_check(p->str, p->len, &lim, &err) != WF_OK) {
            snprintf(why, whylen, "lean entry's input 'p' is not one msgpack value: %s",
                     err.message);
            return -1;
        }
        snprintf(id, WF__ID_MAX, "%s:%s", def->name, c->str);
        *input = p;
        return 0;
    }
    if (!rec) {
        snprintf(why, whylen, "entry has no field 'r' or 'c' (not written by wf)");
        return -1;
    }
    if (wf__record_decode(rec->str, rec->len, id, NULL, &err) != WF_OK) {
        snprintf(why, whylen, "%s", err.message[0] ? err.message : "not a run record");
        return -1;
    }
    if (wf__runid_parse(id, wfname, &err) != WF_OK || strcmp(wfname, def->name) != 0) {
        snprintf(why, whylen, "run %s does not belong to workflow %s", id, def->name);
        return -1;
    }
    return 0;
}

/* Adds entry `e` of an XREADGROUP / XAUTOCLAIM answer to `cc`. */
void wf__claim_add(wf_worker *w, wf__wdef *def, wf__claim_call *cc, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return; /* nil: an entry deleted while pending; nothing to claim */
    const char *entry = e->element[0]->str;
    char id[WF__ID_MAX];
    const redisReply *input;
    char why[WF__ID_MAX + WF__NAME_MAX + WF_ERROR_MSG_MAX];
    if (entry_run(def, e->element[1], id, &input, why, sizeof why) == 0) {
        char *key = wf__key_run(w->url.prefix, def->name, id);
        char *idc = strdup(id);
        if (!key || !idc) {
            free(key);
            free(idc);
            return;
        }
        cc->owned[cc->nowned++] = key;
        cc->owned[cc->nowned++] = idc;
        cc->keys[WF__NFIXED + cc->ngood] = key;
        int g = cc->ngood++;
        cc->good[3 * g] = entry;
        cc->good_len[3 * g] = strlen(entry);
        cc->good[3 * g + 1] = idc;
        cc->good_len[3 * g + 1] = strlen(idc);
        cc->good[3 * g + 2] = input ? input->str : "";
        cc->good_len[3 * g + 2] = input ? input->len : 0;
        cc->kinds[g] = input ? 'p' : 'r';
        return;
    }
    char *reason = strdup(why);
    if (!reason) return; /* out of memory: XAUTOCLAIM brings the entry back after the lease time */
    cc->owned[cc->nowned++] = reason;
    wf__log(WF__LOG_WARN,
            "queue entry %s of workflow %s is not a valid run record (%s); "
            "moving it to the dead-letter list %s",
            entry, def->name, reason, def->keys.k[WF__K_DEAD]);
    cc->bad[2 * cc->nbad] = entry;
    cc->bad[2 * cc->nbad + 1] = reason;
    cc->nbad++;
}
