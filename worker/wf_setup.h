/* wf_setup.h - what must exist in Redis before a worker shows as registered (setup.c), described
 * once and sent by whoever calls: synchronously at start, asynchronously on every reconnect. */
#ifndef WF_SETUP_H
#define WF_SETUP_H

struct wf_worker;

/* Sends one set-up command (argv copied or sent before returning; `what` names it for logs).
 * Returns 0 to go on, or an error code that stops the walk and is returned by it. */
typedef int (*wf__setup_send)(void *ctx, int argc, const char **argv, const char *what);

/* The consumer groups: every queue lane, P:{W}:parents, and P:{W}:outbox when webhooks are on.
 * Returns 0 or the first non-zero `send` returned. */
int wf__setup_groups(struct wf_worker *w, wf__setup_send send, void *ctx);
/* The registration: one HSET of P:workflows naming every workflow. 0, WF_ERR_NOMEM or `send`'s. */
int wf__setup_register(struct wf_worker *w, wf__setup_send send, void *ctx);
/* The consumer groups again, sent on the loop's cmd connection (refusals are logged): after a
 * NOGROUP (the queue was deleted, or Redis restarted empty). */
void wf__setup_groups_async(struct wf_worker *w);

#endif
