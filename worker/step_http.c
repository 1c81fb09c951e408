/* step_http.c - wf_step_http(): an HTTP call as a durable step (include/wf/step.h).
 *
 * The call is the body of a wf_step_run_ex() step, so it inherits the step engine's guarantees:
 * its response is recorded with the lease check (step.lua) and replayed on later executions, and
 * failed attempts are retried durably with the step's backoff (the run waits without a thread).
 * The request runs on the executor thread with a curl easy handle (the handler is blocking code
 * anyway); a progress callback aborts it when the run is cancelled or the step's deadline passes.
 *
 * The recorded result is a msgpack map {"status": int, "type": str, "body": bin}; the str and bin
 * carry one extra NUL byte so that the replayed pointers can be handed out as C strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "wf/step.h"
#include "wf_worker_internal.h"

#define DEFAULT_TIMEOUT_MS  30000
#define DEFAULT_MAX_RESPONE (1024 * 1024)

typedef struct call {
    const wf_http_request *req;
    wf_ctx *ctx;
    char *buf; /* response body */
    size_t len, cap, max;
    int too_large;
    char type[256];     /* Content-Type */
    long retry_after_s; /* Retry-After in seconds, -1: none */
} call;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    call *c = userp;
    size_t len = size * n;
    if (c->len + len > c->max) {
        c->too_large = 1;
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (c->len + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + len + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) return 0;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    call *c = userp;
    size_t len = size * n;
    if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        const char *v = data + 13;
        size_t vl = len - 13;
        while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
        snprintf(c->type, sizeof c->type, "%.*s", (int)vl, v);
    } else if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char *end;
        long s = strtol(data + 12, &end, 10);
        if (end != data + 12 && s >= 0) c->retry_after_s = s;
    }
    return len;
}

static int on_progress(void *userp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    call *c = userp;
    return wf_ctx_cancelled(c->ctx); /* non-zero aborts */
}

/* The step body: one attempt of the request. */
static int perform(wf_ctx *ctx, void *arg, msgpack_packer *pk)
{
    call *c = arg;
    const wf_http_request *r = c->req;
    c->ctx = ctx;
    c->len = 0;
    c->too_large = 0;
    c->type[0] = '\0';
    c->retry_after_s = -1;
    CURL *e = curl_easy_init();
    if (!e) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory (curl)");
    struct curl_slist *headers = NULL;
    for (const char *const *h = r->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(headers, *h);
        if (l) headers = l;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    const char *method = r->method && *r->method ? r->method : "GET";
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (r->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    } else if (strcasecmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    }
    long timeout = (long)(r->timeout_ms > 0 ? r->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "wf-worker");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode code = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(headers);

    if (code == CURLE_ABORTED_BY_CALLBACK)
        return wf_ctx_fail(ctx, WF_ERR_CANCELLED, "%s %s: cancelled", method, r->url);
    if (c->too_large)
        return wf_ctx_fail(ctx, WF_ERR_FATAL, /* would be too large again: no retry */
                           "%s %s: response body over %zu bytes (raise max_response)", method,
                           r->url, c->max);
    if (code == CURLE_OPERATION_TIMEDOUT)
        return wf_ctx_fail(ctx, WF_ERR_TIMEOUT, "%s %s: no response within %ld ms", method, r->url,
                           timeout);
    if (code != CURLE_OK)
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "%s %s: %s", method, r->url,
                           errbuf[0] ? errbuf : curl_easy_strerror(code));
    if (status == 429 || status >= 500) {
        if (c->retry_after_s >= 0) wf_ctx_retry_after(ctx, (int64_t)c->retry_after_s * 1000);
        return wf_ctx_fail(ctx, WF_ERR_HANDLER, "%s %s: HTTP %ld%s%.*s", method, r->url, status,
                           c->len ? ": " : "", (int)(c->len < 200 ? c->len : 200),
                           c->buf ? c->buf : "");
    }
    size_t tl = strlen(c->type);
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "status", 6);
    msgpack_pack_long(pk, status);
    msgpack_pack_str_with_body(pk, "type", 4);
    msgpack_pack_str(pk, tl + 1);
    msgpack_pack_str_body(pk, c->type, tl + 1);
    msgpack_pack_str_with_body(pk, "body", 4);
    msgpack_pack_bin(pk, c->len + 1);
    if (c->len) msgpack_pack_bin_body(pk, c->buf, c->len);
    msgpack_pack_bin_body(pk, "", 1);
    return WF_OK;
}

/* Fills `resp` from the recorded map; WF_OK or WF_ERR_BAD_PAYLOAD. */
static int unpack(wf_ctx *ctx, const msgpack_object *o, wf_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->content_type = "";
    resp->body = "";
    int have_status = 0;
    if (o && o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR) continue;
            if (k->via.str.size == 6 && memcmp(k->via.str.ptr, "status", 6) == 0 &&
                v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                resp->status = (int)v->via.u64;
                have_status = 1;
            } else if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "type", 4) == 0 &&
                       v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0 &&
                       v->via.str.ptr[v->via.str.size - 1] == '\0') {
                resp->content_type = v->via.str.ptr;
            } else if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "body", 4) == 0 &&
                       v->type == MSGPACK_OBJECT_BIN && v->via.bin.size > 0 &&
                       v->via.bin.ptr[v->via.bin.size - 1] == '\0') {
                resp->body = v->via.bin.ptr;
                resp->body_len = v->via.bin.size - 1;
            }
        }
    }
    if (!have_status)
        return wf_ctx_fail(ctx, WF_ERR_BAD_PAYLOAD,
                           "the recorded result of this HTTP step is not a response (was the "
                           "step name used for another kind of step?)");
    return WF_OK;
}

int wf_step_http(wf_ctx *ctx, const char *name, const wf_http_request *request,
                 wf_http_response *response)
{
    if (response) memset(response, 0, sizeof *response);
    if (!ctx) return WF_ERR_INVALID;
    if (!request || !request->url ||
        (strncmp(request->url, "http://", 7) != 0 && strncmp(request->url, "https://", 8) != 0))
        return wf_ctx_fail(ctx, WF_ERR_INVALID, "wf_step_http needs an http:// or https:// URL");
    pthread_once(&curl_once, curl_init);
    if (!curl_ok) return wf_ctx_fail(ctx, WF_ERR_SYSTEM, "curl_global_init failed");
    call c = {.req = request,
              .max = request->max_response ? request->max_response : DEFAULT_MAX_RESPONE};
    const msgpack_object *result = NULL;
    int rc = wf_step_run_ex(ctx, name, perform, &c, request->retry, &result);
    free(c.buf);
    if (rc != WF_OK) return rc;
    wf_http_response tmp;
    rc = unpack(ctx, result, response ? response : &tmp);
    return rc;
}
