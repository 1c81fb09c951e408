/* slot.h - Redis Cluster's key -> slot mapping, where a formatted command's routing key sits, and
 * the text of a MOVED / ASK redirect (slot.c). Pure functions of bytes: the routers that send
 * anywhere are redis/ (cluster.h).
 */
#ifndef WF_SLOT_H
#define WF_SLOT_H

#include <stddef.h>

#define WF__SLOTS 16384 /* slots of a Redis Cluster */

/* The cluster slot of a key (hash tag rules included). */
int wf__key_slot(const char *key, size_t len);

/* Splits a RESP-formatted command (an array of bulk strings, as hiredis formats it) into at most
 * `max` arguments pointing into `cmd`. Returns the command's number of arguments (which may be
 * more than max: call again with room for them) or -1 when `cmd` is not such an array. */
int wf__resp_args(const char *cmd, size_t len, int max, const char **argv, size_t *argvlen);

/* The slot a formatted command must go to: its first key's (FCALL, EVAL: the first of KEYS;
 * XREAD/XREADGROUP: the first stream), or -1 for a command without keys (PING, TIME, MULTI,
 * FUNCTION, an FCALL with no keys...), which any node may answer. */
int wf__cmd_slot(const char *cmd, size_t len);

/* Parses an error reply "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381". Returns 1 and
 * fills the fields (host NUL-terminated, at most hostsz bytes), or 0 when it is neither. */
int wf__redirect_parse(const char *msg, size_t len, int *ask, int *slot, char *host, size_t hostsz,
                       int *port);

#endif
