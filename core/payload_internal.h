/* payload_internal.h - what core/payload.c and core/json.c share about untrusted payloads.
 *
 * Both files bound input the same way: the same defaults for wf_payload_limits, and the same hard
 * ceiling on nesting, which exists because msgpack-c's unpacker has a fixed stack and cannot decode
 * deeper values at all. Accepting or producing anything deeper would only move the failure to the
 * worker that later decodes it.
 */
#ifndef WF_PAYLOAD_INTERNAL_H
#define WF_PAYLOAD_INTERNAL_H

#include <stddef.h>

#include <msgpack.h>

#include "wf/payload.h"

#define WF__PAYLOAD_DEFAULT_MAX_BYTES ((size_t)1024 * 1024)
#define WF__PAYLOAD_DEFAULT_MAX_DEPTH 32
/* Deepest nesting msgpack-c can unpack: MSGPACK_EMBED_STACK_SIZE, fixed when libmsgpackc was
 * built and not in its public headers (tests/test_payload.c checks it). Limits above are cut. */
#define WF__PAYLOAD_DEPTH_CEILING 32

/* Resolves `limits` (NULL or zero fields: defaults; max_depth capped at the ceiling) into
 * `*max_bytes` and `*max_depth`. Returns WF_OK, or WF_ERR_INVALID for a negative max_depth. */
int wf__payload_limits(const wf_payload_limits *limits, size_t *max_bytes, int *max_depth,
                       wf_error *err);

/* Checks `data` as wf_msgpack_check does (size, exactly one value, depth) and unpacks it into `u`
 * (initialised by the caller, who destroys it in every case). The object borrows from `data` and
 * from `u`'s zone. Returns WF_OK, WF_ERR_TOO_LARGE, WF_ERR_BAD_PAYLOAD or WF_ERR_NOMEM. */
int wf__msgpack_decode(const void *data, size_t len, size_t max_bytes, int max_depth,
                       msgpack_unpacked *u, wf_error *err);

#endif
