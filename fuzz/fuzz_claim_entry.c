/* fuzz_claim_entry.c - wf__claim_add (worker/claim_entry.c): one stream entry of an XREADGROUP /
 * XAUTOCLAIM answer, [entry id, [field, value, ...]], turned into a run to claim (a record entry:
 * field `r`; a lean run: `c` and `p`) or a dead letter with a reason. Anyone with write access to
 * the stream can forge an entry, so what is claimed must be a valid run id of this workflow (and,
 * lean, an input the handler's thread can decode), and anything else a dead letter with a reason.
 *
 * The input is read as a hiredis reply tree for workflow "echo", and every input is some tree:
 *   byte 0: bits 0-1 the entry's shape: 0 [id, fields], 1 nil (deleted while pending),
 *           2 [id] (too short), 3 [id, "fields"] (fields not an array);
 *           bits 2-7 (mod 17) the number of items of the field list (an odd count is fine)
 *   then per item a header byte h: h < 254 a string of h bytes; 254 a string whose length is the
 *   next two bytes (big endian); 255 an integer (not a string). Bytes past the end are absent:
 *   a string is cut there, missing items are empty strings. The entry id is always "1-0"; an
 *   empty input is an empty array. fuzz/run links worker/claim_entry.c and the log it writes.
 */
#include "fuzz.h"
#include "wf_worker_internal.h"

#define MAX_ITEMS 16

/* The next string item of the input as a hiredis string reply (NUL-terminated like hiredis's). */
static redisReply *item(const uint8_t **p, const uint8_t *end)
{
    redisReply *r = calloc(1, sizeof *r);
    if (!r) abort();
    size_t len = 0;
    if (*p < end) {
        uint8_t h = *(*p)++;
        if (h == 255) {
            r->type = REDIS_REPLY_INTEGER;
            return r;
        }
        len = h;
        if (h == 254) {
            len = 0;
            for (int i = 0; i < 2 && *p < end; i++) len = len << 8 | *(*p)++;
        }
    }
    if (len > (size_t)(end - *p)) len = (size_t)(end - *p);
    r->type = REDIS_REPLY_STRING;
    r->str = malloc(len + 1);
    if (!r->str) abort();
    if (len) memcpy(r->str, *p, len);
    r->str[len] = '\0';
    r->len = len;
    *p += len;
    return r;
}

static redisReply *array(size_t n)
{
    redisReply *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    if (!r->element) abort();
    return r;
}

static redisReply *string(const char *s)
{
    redisReply *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->type = REDIS_REPLY_STRING;
    r->len = strlen(s);
    r->str = strdup(s);
    if (!r->str) abort();
    return r;
}

static redisReply *entry_from(const uint8_t *data, size_t size)
{
    if (size == 0) return array(0);
    const uint8_t *p = data + 1, *end = data + size;
    int shape = data[0] & 3;
    if (shape == 1) {
        redisReply *nil = calloc(1, sizeof *nil);
        if (!nil) abort();
        nil->type = REDIS_REPLY_NIL;
        return nil;
    }
    redisReply *e = array(shape == 2 ? 1 : 2);
    e->element[0] = string("1-0");
    if (shape == 2) return e;
    if (shape == 3) {
        e->element[1] = string("fields");
        return e;
    }
    size_t n = (size_t)(data[0] >> 2) % (MAX_ITEMS + 1);
    redisReply *fields = array(n);
    for (size_t i = 0; i < n; i++) fields->element[i] = item(&p, end);
    e->element[1] = fields;
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wf_worker w;
    static wf__wdef def;
    if (!def.name) {
        wf__log_set_level(WF__LOG_ERROR); /* a dead letter logs a warning: not 10^6 of them */
        w.url.prefix = "wf";
        w.url.max_payload = 1024 * 1024;
        def.name = "echo";
        if (wf__wfkeys_init(&def.keys, w.url.prefix, def.name) != WF_OK) abort();
    }
    const char *keys[WF__NFIXED + 1] = {0}, *good[3] = {0}, *bad[2] = {0};
    size_t good_len[3] = {0};
    char kinds[2] = {0}, *owned[3] = {0};
    wf__claim_call cc = {keys, good, good_len, bad, kinds, owned, 0, 0, 0};

    redisReply *e = entry_from(data, size);
    wf__claim_add(&w, &def, &cc, e);

    int usable = e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
                 e->element[0]->type == REDIS_REPLY_STRING &&
                 e->element[1]->type == REDIS_REPLY_ARRAY;
    FUZZ_CHECK(cc.ngood + cc.nbad == usable, "good %d bad %d for shape %d", cc.ngood, cc.nbad,
               size ? data[0] & 3 : -1);
    if (cc.ngood) {
        char wfname[WF__NAME_MAX + 1];
        wf_error err = {0};
        FUZZ_CHECK(strcmp(good[0], "1-0") == 0 && good_len[0] == 3, "entry '%s'", good[0]);
        FUZZ_CHECK(strlen(good[1]) == good_len[1], "id length %zu", good_len[1]);
        FUZZ_CHECK(wf__runid_parse(good[1], wfname, &err) == WF_OK, "accepted id '%s': %s", good[1],
                   err.message);
        FUZZ_CHECK(strcmp(wfname, "echo") == 0, "accepted id '%s' of another workflow", good[1]);
        char *key = wf__key_run(w.url.prefix, def.name, good[1]);
        FUZZ_CHECK(key && strcmp(keys[WF__NFIXED], key) == 0, "key '%s'", keys[WF__NFIXED]);
        free(key);
        FUZZ_CHECK(kinds[0] == 'r' || kinds[0] == 'p', "kind %d", kinds[0]);
        if (kinds[0] == 'r')
            FUZZ_CHECK(good_len[2] == 0, "record entry with input %zu", good_len[2]);
        if (kinds[0] == 'p' && good_len[2] > 0)
            FUZZ_CHECK(wf_msgpack_check(good[2], good_len[2], &(wf_payload_limits){good_len[2], 0},
                                        &err) == WF_OK,
                       "lean run with an input the handler cannot decode: %s", err.message);
    }
    if (cc.nbad) {
        FUZZ_CHECK(strcmp(bad[0], "1-0") == 0, "entry '%s'", bad[0]);
        FUZZ_CHECK(bad[1] && bad[1][0], "dead letter without a reason");
    }
    for (int i = 0; i < cc.nowned; i++) free(owned[i]);
    freeReplyObject(e);
    return 0;
}
