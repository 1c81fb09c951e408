/* exec_log.h - shared by the test workflows: appends "RUN_ID ATTEMPT\n" to the file named by
 * $WF_TEST_EXEC_LOG (O_APPEND, one write), so tests can count how often each run executed. */
#ifndef WF_TEST_EXEC_LOG_H
#define WF_TEST_EXEC_LOG_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <wf/wf.h>

static inline void wf_test_exec_log(const wf_ctx *ctx)
{
    const char *path = getenv("WF_TEST_EXEC_LOG");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[300];
    int n = snprintf(line, sizeof line, "%s %d\n", wf_ctx_event_id(ctx), wf_ctx_attempt(ctx));
    if (n > 0 && write(fd, line, (size_t)n) != n) perror("exec log");
    close(fd);
}

static inline void wf_test_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
