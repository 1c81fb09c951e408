/* fixture_load.c - RESTOREs a dump of Redis keys (tests/fixtures/layout-v1.dump) into a test's
 * server and reads the manifest of runs that goes with it (fixture_load.h). The dump is text, one
 * key a line, so a fixture diffs and reviews like code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_load.h"
#include "harness.h" /* wf_test_command_argv follows MOVED and ASK in cluster mode */

/* Decodes `n` hex digits at `hex` into a malloc'd buffer; NULL when malformed. */
static char *unhex(const char *hex, size_t n, size_t *len)
{
    if (n % 2) return NULL;
    char *out = malloc(n / 2 + 1);
    for (size_t i = 0; out && i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    *len = n / 2;
    return out;
}

/* RESTOREs one `KEY_HEX TTL_MS PAYLOAD_HEX` line. Returns 0 or -1 (message on stderr). */
static int restore_line(redisContext *rc, char *line, long lineno)
{
    char *key_hex = strtok(line, " \n"), *ttl_s = strtok(NULL, " \n"),
         *pay_hex = strtok(NULL, " \n");
    size_t klen = 0, plen = 0;
    char *key = key_hex ? unhex(key_hex, strlen(key_hex), &klen) : NULL;
    char *payload = pay_hex ? unhex(pay_hex, strlen(pay_hex), &plen) : NULL;
    long long ttl = ttl_s ? atoll(ttl_s) : 0;
    int rc_ = -1;
    if (key && payload) {
        char ttl_arg[32];
        snprintf(ttl_arg, sizeof ttl_arg, "%lld", ttl > 0 ? ttl : 0);
        const char *argv[] = {"RESTORE", key, ttl_arg, payload, "REPLACE"};
        size_t lens[] = {7, klen, strlen(ttl_arg), plen, 7};
        redisReply *r = wf_test_command_argv(rc, 5, argv, lens);
        if (r && r->type == REDIS_REPLY_STATUS)
            rc_ = 0;
        else
            fprintf(stderr, "fixture line %ld: RESTORE %.*s: %s\n", lineno, (int)klen, key,
                    r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
    } else {
        fprintf(stderr, "fixture line %ld: not KEY_HEX TTL_MS PAYLOAD_HEX\n", lineno);
    }
    free(key);
    free(payload);
    return rc_;
}

long wf_test_load_fixture(redisContext *rc, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long n = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (restore_line(rc, line, lineno) < 0) {
            n = -1;
            break;
        }
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

long wf_test_fixture_manifest(const char *path, wf_test_fixture_run **runs)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[600];
    long n = 0, cap = 0;
    *runs = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            *runs = realloc(*runs, (size_t)cap * sizeof **runs);
        }
        wf_test_fixture_run *r = &(*runs)[n];
        if (sscanf(line, "%299s %15s %129s %39s", r->id, r->state, r->workflow, r->shape) != 4) {
            fprintf(stderr, "%s: not RUN_ID STATE WORKFLOW SHAPE: %s", path, line);
            free(*runs);
            *runs = NULL;
            fclose(f);
            return -1;
        }
        n++;
    }
    fclose(f);
    return n;
}
