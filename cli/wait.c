/* wait.c - waiting for a run to become final, for `wf run --wait`, `wf wait` and
 * `wf status --follow`: polling its status with a deadline, the progress line on stderr, and the
 * exit code an outcome maps to. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run_view.h"

/* The client has no notification of a run's state changes, so waiting polls: every 50 ms at
 * first (a short run is seen ending at once), growing to 250 ms (four reads a second at most). */
#define POLL_FIRST_MS 50
#define POLL_MAX_MS   250

int64_t wf__cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) continue;
}

int wf__cli_poll_final(wf_run *run, wf_status *st, int64_t timeout_ms, wf__cli_poll_fn on_poll,
                       void *arg)
{
    int64_t deadline = timeout_ms > 0 ? wf__cli_mono_ms() + timeout_ms : 0;
    int64_t interval = POLL_FIRST_MS;
    for (;;) {
        if (on_poll) {
            int rc = on_poll(run, st, arg);
            if (rc != WF_CLI_OK) return rc;
        }
        if (wf_state_is_final(st->state)) return WF_CLI_OK;
        int64_t now = wf__cli_mono_ms();
        if (deadline > 0 && now >= deadline) return WF_CLI_TIMEOUT;
        int64_t nap = interval;
        if (deadline > 0 && deadline - now < nap) nap = deadline - now;
        nap_ms(nap);
        interval = interval * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : interval * 3 / 2;
        wf_status next;
        wf_error err = {0};
        if (wf_run_status(run, &next, &err) != WF_OK) return wf__cli_fail(&err);
        wf_status_clear(st);
        *st = next;
    }
}

/* ---- Progress on stderr ----------------------------------------------------------------------
 */

void wf__cli_progress_init(wf__cli_progress *p)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(fileno(stderr));
    p->start_ms = wf__cli_mono_ms();
    p->state = WF_STATE_UNKNOWN;
}

int wf__cli_progress_show(wf_run *run, const wf_status *st, void *arg)
{
    wf__cli_progress *p = arg;
    size_t len;
    const char *field = wf__cli_status_field(st, "step", &len);
    char step[160] = "";
    if (field) snprintf(step, sizeof step, "%.*s", (int)len, field);
    char elapsed[32];
    wf__cli_format_duration(wf__cli_mono_ms() - p->start_ms, elapsed, sizeof elapsed);
    if (p->tty) {
        /* On a terminal one line rewritten in place; the final state is the caller's to print. */
        if (!wf_state_is_final(st->state))
            fprintf(stderr, "\r\033[K%s  %-10s  %s%s%s  %s", wf_run_id(run),
                    wf_state_name(st->state), step[0] ? "step " : "", step, step[0] ? "  " : "",
                    elapsed);
        fflush(stderr);
    } else if (st->state != p->state || strcmp(step, p->step) != 0) {
        fprintf(stderr, "wf: %s %s%s%s after %s\n", wf_run_id(run), wf_state_name(st->state),
                step[0] ? ", step " : "", step, elapsed);
    }
    p->state = st->state;
    snprintf(p->step, sizeof p->step, "%s", step);
    return WF_CLI_OK;
}

void wf__cli_progress_end(wf__cli_progress *p)
{
    if (p->tty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

int wf__cli_outcome_code(wf_state state, int distinct)
{
    switch (state) {
    case WF_STATE_COMPLETED:
        return WF_CLI_OK;
    case WF_STATE_CANCELLED:
        return distinct ? WF_CLI_CANCELLED : WF_CLI_RUN_FAILED;
    case WF_STATE_TERMINATED:
        return distinct ? WF_CLI_TERMINATED : WF_CLI_RUN_FAILED;
    default:
        return WF_CLI_RUN_FAILED;
    }
}

int wf__cli_wait_outcome(wf_run *run, const wf_status *st, int rc, int64_t timeout_ms, int distinct)
{
    if (rc == WF_CLI_TIMEOUT) {
        char waited[32];
        fprintf(stderr, "wf: run '%s' is still %s after %s\n", wf_run_id(run),
                wf_state_name(st->state),
                wf__cli_format_duration(timeout_ms, waited, sizeof waited));
        return rc;
    }
    return rc == WF_CLI_OK ? wf__cli_outcome_code(st->state, distinct) : rc;
}
