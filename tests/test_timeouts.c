/* test_timeouts.c - a Redis that accepts the connection and never answers (a listening socket no
 * one reads: the kernel completes the handshake). The caller must hear that Redis did not answer
 * within N ms and which setting changes N, not errno's "Resource temporarily unavailable". */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "wf_internal.h"

static int mute_fd = -1, mute_port;

static void setup(void)
{
    mute_port = wf_test_free_port();
    mute_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(mute_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)mute_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(mute_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(mute_fd, 16), 0); /* never accept()ed, never answered */
}

static void teardown(void)
{
    if (mute_fd >= 0) close(mute_fd);
}

TestSuite(timeouts, .init = setup, .fini = teardown, .timeout = 30);

Test(timeouts, silent_redis_names_timeout_ms_and_its_value)
{
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?timeout_ms=300", mute_port);
    wf_error err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wf_client *cl = wf_client_connect(url, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_null(cl);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert_lt(ms, 5000, "gave up after about timeout_ms (took %ld ms)", ms);
    cr_assert_eq(err.code, WF_ERR_IO, "%d: %s", err.code, err.message);
    cr_assert(strstr(err.message, "did not answer within 300 ms"), "%s", err.message);
    cr_assert(strstr(err.message, "timeout_ms"), "names the setting: %s", err.message);
    cr_assert_null(strstr(err.message, "Resource temporarily unavailable"), "%s", err.message);
}
