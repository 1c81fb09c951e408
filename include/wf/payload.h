/* wf/payload.h - untrusted input: readValidatedPayload, and msgpack <-> JSON conversion.
 *
 * Runs carry msgpack. Services and the command line speak JSON. These calls decode bytes that
 * came from outside with bounds on size and nesting depth, so a hostile body cannot make wf
 * allocate without limit or recurse off the stack.
 */
#ifndef WF_PAYLOAD_H
#define WF_PAYLOAD_H

#include <stddef.h>

#include <msgpack.h>

#include "api.h"
#include "error.h"

WF_BEGIN_DECLS

typedef enum wf_payload_format {
    WF_PAYLOAD_AUTO =
        0, /* JSON if the first non-blank byte is one of {["tfn-0123456789, else msgpack */
    WF_PAYLOAD_MSGPACK,
    WF_PAYLOAD_JSON,
} wf_payload_format;

/* Bounds on untrusted input. Zero fields take the defaults. */
typedef struct wf_payload_limits {
    size_t max_bytes; /* default 1048576 */
    int max_depth;    /* nesting of arrays/maps, default 32 */
} wf_payload_limits;

/* A validator sees the decoded value (never NULL: an absent input is a nil object) and packs the
 * value to keep into `out`. It returns WF_OK, or fills `err` with a message for the caller (for
 * instance wf_error_set(err, WF_ERR_VALIDATION, "Enter a title for the draft.")) and returns it.
 * `input` is borrowed for the duration of the call. */
typedef int (*wf_validator_fn)(const msgpack_object *input, msgpack_packer *out, void *userdata,
                               wf_error *err);

/* readValidatedPayload: decodes `data` (`len` bytes in `format`; data NULL or len 0 means "no
 * input", a nil value), checks it against `limits` (NULL: defaults), and hands it to `validator`,
 * which packs the value to keep into `out` (a caller-owned, initialised msgpack_sbuffer). A NULL
 * validator keeps the decoded value as it is.
 *
 * Returns WF_OK; WF_ERR_TOO_LARGE or WF_ERR_BAD_PAYLOAD (with where and why) for bad bytes; or the
 * validator's own code and message. On error `out` may hold partial data: clear it. */
int wf_read_validated_payload(const void *data, size_t len, wf_payload_format format,
                              const wf_payload_limits *limits, wf_validator_fn validator,
                              void *userdata, msgpack_sbuffer *out, wf_error *err);

/* Checks that `data` is exactly one well-formed msgpack value within `limits` (NULL: defaults).
 * Returns WF_OK, WF_ERR_TOO_LARGE or WF_ERR_BAD_PAYLOAD. */
int wf_msgpack_check(const void *data, size_t len, const wf_payload_limits *limits, wf_error *err);

/* Converts JSON text to msgpack, appended to `out` (caller-owned, initialised). Integers stay
 * integers, other numbers become doubles. Returns WF_OK, WF_ERR_TOO_LARGE or WF_ERR_BAD_PAYLOAD
 * (with line and column). */
int wf_json_to_msgpack(const char *json, size_t len, const wf_payload_limits *limits,
                       msgpack_sbuffer *out, wf_error *err);

/* Converts one msgpack value to compact JSON text. Binary and ext values become base64 strings;
 * map keys that are not strings are converted to their JSON text. On success sets `*json` to a
 * NUL-terminated string the caller frees with free(). Returns WF_OK or WF_ERR_BAD_PAYLOAD. */
int wf_msgpack_to_json(const void *data, size_t len, char **json, wf_error *err);

/* The same for an already decoded object. Same ownership. */
int wf_object_to_json(const msgpack_object *obj, char **json, wf_error *err);

WF_END_DECLS
#endif
