/* fixture_load.h - loading a Redis data fixture (tests/fixtures/layout-v1.dump, written by
 * scripts/capture-v1-fixture) into a test's real Redis with RESTORE, and reading its manifest. */
#ifndef WF_TEST_FIXTURE_LOAD_H
#define WF_TEST_FIXTURE_LOAD_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* RESTOREs (REPLACE) every line `KEY_HEX TTL_MS PAYLOAD_HEX` of the dump at `path` through `rc`
 * (a key with a TTL gets it again, relative to now; -1: none); lines starting with '#' are
 * comments. Returns how many keys it restored, or -1 with a message on stderr (unreadable file,
 * malformed line, or Redis refused a RESTORE, e.g. a payload of a newer RDB version). */
long wf_test_load_fixture(redisContext *rc, const char *path);

/* One line of a fixture's manifest: `RUN_ID STATE WORKFLOW SHAPE`. */
typedef struct wf_test_fixture_run {
    char id[300];
    char state[16];
    char workflow[130];
    char shape[40]; /* what the capture made of it, e.g. "lease-orphaned" (capture script) */
} wf_test_fixture_run;

/* Reads the manifest at `path` (lines starting with '#' skipped) into a malloc'd array the caller
 * frees; returns its length, or -1 with a message on stderr. */
long wf_test_fixture_manifest(const char *path, wf_test_fixture_run **runs);

#endif
