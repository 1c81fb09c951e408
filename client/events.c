/* events.c - recording events (sendEvent). Each event is appended to the stream P:events:NAME,
 * capped at about 10,000 entries, where waiting runs and operators can read it. */
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

int wf_send_event(wf_client *client, const char *name, const void *payload, size_t len,
                  wf_error *err)
{
    if (!client) return wf_error_set(err, WF_ERR_INVALID, "client is NULL");
    if (!name || !wf__name_valid(name))
        return wf_error_set(err, WF_ERR_BAD_NAME,
                            "invalid event name: use 1-128 characters of [A-Za-z0-9._-]");
    if (len > client->url.max_payload)
        return wf_error_set(err, WF_ERR_TOO_LARGE, "event payload is %zu bytes, over %zu", len,
                            client->url.max_payload);
    if (len > 0) {
        wf_payload_limits lim = {client->url.max_payload, 64};
        int rc = wf_msgpack_check(payload, len, &lim, err);
        if (rc != WF_OK) return rc;
    }
    size_t klen = strlen(name) + 8;
    char *suffix = malloc(klen);
    if (!suffix) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    memcpy(suffix, "events:", 7);
    memcpy(suffix + 7, name, strlen(name) + 1);
    char *key = wf__key_global(client->url.prefix, suffix);
    free(suffix);
    if (!key) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    redisReply *r = wf__client_cmd(client, 0, err, "XADD %s MAXLEN ~ 10000 * p %b", key,
                                   payload ? payload : "", payload ? len : (size_t)0);
    free(key);
    if (!r) return err ? err->code : WF_ERR_IO;
    freeReplyObject(r);
    return WF_OK;
}
