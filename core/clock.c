/* clock.c - the two clocks every layer reads: wall time in ms (run ids, records, deadlines stored
 * in Redis) and a monotonic clock in ms (timeouts inside one process). */
#include <time.h>

#include "wf_core.h"

int64_t wf__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wf__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
