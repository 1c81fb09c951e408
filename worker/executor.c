/* executor.c - the pool of executor threads that run workflow handlers.
 *
 * The loop submits claimed jobs; a thread decodes the run's input, calls the handler with a
 * packer on the job's output buffer, and posts the job to the done list, then activates the
 * loop's done event (safe from any thread: evthread_use_pthreads() ran before the base existed).
 * Handlers' calls into Redis (wf__ctx_call) travel the same way: queued here, sent by the loop.
 *
 * Hand-off: an idle thread sleeps on its own semaphore, and the loop gives a job straight to one
 * (a stack of idle threads). Threads sleeping on one shared condition variable had to take the
 * pool's mutex again as each woke, and with many threads per core that convoy was most of the
 * worker's CPU per run. A job handed to a thread is RUNNING from the hand-off on: the thread owns
 * it. The queue is only used when no thread is idle.
 *
 * Lifetime: the pool is reference counted (the worker plus one per thread) so that a thread whose
 * handler never returns can be detached when the worker is freed; when it does return it finds
 * the pool orphaned, frees its job itself and leaves, and the last reference frees the pool.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wf_worker_internal.h"

/* One executor thread. */
typedef struct slot {
    struct wf__pool *pool;
    int idx;
    sem_t sem;              /* posted when `job` was handed over, or to leave (quit) */
    wf__job *job;           /* written by the loop under mu before the post; read after the wait */
    struct slot *next_idle; /* link in the pool's idle stack */
} slot;

struct wf__pool {
    pthread_mutex_t mu;
    pthread_cond_t exit_cv; /* a thread exited */
    slot *slots;            /* one per thread (freed with the pool: threads may outlive it) */
    slot *idle;             /* threads waiting on their semaphore */
    wf__job *qhead, *qtail; /* jobs waiting for a thread */
    wf__job *dhead, *dtail; /* jobs whose handler returned, for the loop */
    wf__req *rhead, *rtail; /* ctx calls for the loop */
    struct event *done_ev;  /* the loop's wake-up; NULL once orphaned */
    int loop_running;       /* 0: ctx calls fail at once with WF_ERR_CLOSED */
    int quit;               /* threads exit when they see it */
    int orphaned;           /* the worker is gone: threads free their own jobs */
    int refs;               /* worker + live threads */
    int nthreads;
    int alive;
    pthread_t *threads;
    int *exited; /* per thread: 1 once it left its loop (joinable at once) */
};

static int64_t mono_ms(void)
{
    return wf__mono_ms();
}

static void pool_destroy(wf__pool *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->exit_cv);
    for (int i = 0; i < p->nthreads; i++) sem_destroy(&p->slots[i].sem);
    free(p->slots);
    free(p->threads);
    free(p->exited);
    free(p);
}

/* Runs one job's handler. Fills job->rc, job->out, job->error. */
static void run_job(wf__job *job)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    const msgpack_object *input = &nil;
    if (job->input_len > 0) {
        size_t off = 0;
        if (msgpack_unpack_next(&u, job->input, job->input_len, &off) != MSGPACK_UNPACK_SUCCESS ||
            off != job->input_len) {
            job->rc = WF_ERR_FATAL;
            job->error = strdup("the run's input is not one well-formed msgpack value");
            msgpack_unpacked_destroy(&u);
            return;
        }
        input = &u.data;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &job->out, msgpack_sbuffer_write);
    atomic_store(&job->started_mono, mono_ms());
    job->rc = job->handler(&job->ctx, input, &pk);
    msgpack_unpacked_destroy(&u);
}

static void *thread_main(void *varg)
{
    slot *self = varg;
    wf__pool *p = self->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* mu is held here */
        if (p->quit) break;
        wf__job *job = p->qhead;
        if (job) {
            p->qhead = job->qnext;
            if (!p->qhead) p->qtail = NULL;
            job->qnext = NULL;
            job->exec_state = WF__EXEC_RUNNING;
            pthread_mutex_unlock(&p->mu);
        } else {
            self->next_idle = p->idle;
            p->idle = self;
            pthread_mutex_unlock(&p->mu);
            while (sem_wait(&self->sem) != 0 && errno == EINTR) {
            }
            job = self->job; /* ordered by the semaphore: no lock needed to read it */
            self->job = NULL;
            if (!job) { /* woken to leave */
                pthread_mutex_lock(&p->mu);
                continue;
            }
        }

        run_job(job);

        pthread_mutex_lock(&p->mu);
        job->exec_state = WF__EXEC_RETURNED;
        if (p->orphaned) {
            /* The worker is gone; if it handed this job to us, it is ours to free. */
            if (job->orphaned) wf__job_free(job);
            continue;
        }
        /* Only the first job of an empty done list wakes the loop: done_cb takes the whole
         * list. */
        int wake = p->dhead == NULL;
        if (p->dtail)
            p->dtail->qnext = job;
        else
            p->dhead = job;
        p->dtail = job;
        if (wake && p->done_ev) event_active(p->done_ev, EV_READ, 0);
    }
    p->alive--;
    p->exited[self->idx] = 1;
    pthread_cond_broadcast(&p->exit_cv);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pool_destroy(p);
    return NULL;
}

wf__pool *wf__pool_new(int n, struct event *done_ev, wf_error *err)
{
    wf__pool *p = calloc(1, sizeof *p);
    if (!p) {
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->threads = calloc((size_t)n, sizeof *p->threads);
    p->exited = calloc((size_t)n, sizeof *p->exited);
    p->slots = calloc((size_t)n, sizeof *p->slots);
    if (!p->threads || !p->exited || !p->slots) {
        free(p->threads);
        free(p->exited);
        free(p->slots);
        free(p);
        wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->exit_cv, &ca);
    pthread_condattr_destroy(&ca);
    p->done_ev = done_ev;
    p->refs = 1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) {
        slot *a = &p->slots[i];
        a->pool = p;
        a->idx = i;
        if (sem_init(&a->sem, 0, 0) != 0) {
            wf_error_set(err, WF_ERR_SYSTEM, "cannot make a semaphore: %s", strerror(errno));
            break;
        }
        int rc = pthread_create(&p->threads[i], NULL, thread_main, a);
        if (rc != 0) {
            sem_destroy(&a->sem);
            wf_error_set(err, WF_ERR_SYSTEM, "cannot start executor thread: %s", strerror(rc));
            break;
        }
        p->nthreads++;
        p->alive++;
        p->refs++;
    }
    pthread_mutex_unlock(&p->mu);
    if (p->nthreads < n) {
        if (p->nthreads == 0 && err && err->code == 0)
            wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        wf__pool_stop(p, 5000);
        wf__pool_unref(p);
        return NULL;
    }
    return p;
}

void wf__pool_submit(wf__pool *p, wf__job *job)
{
    pthread_mutex_lock(&p->mu);
    job->qnext = NULL;
    slot *s = p->quit ? NULL : p->idle;
    if (s) {
        p->idle = s->next_idle;
        s->next_idle = NULL;
        job->exec_state = WF__EXEC_RUNNING; /* the thread owns it from here */
        s->job = job;
        pthread_mutex_unlock(&p->mu);
        sem_post(&s->sem);
        return;
    }
    job->exec_state = WF__EXEC_QUEUED;
    if (p->qtail)
        p->qtail->qnext = job;
    else
        p->qhead = job;
    p->qtail = job;
    pthread_mutex_unlock(&p->mu);
}

wf__job *wf__pool_take_done(wf__pool *p)
{
    pthread_mutex_lock(&p->mu);
    wf__job *j = p->dhead;
    p->dhead = p->dtail = NULL;
    pthread_mutex_unlock(&p->mu);
    return j;
}

wf__req *wf__pool_take_reqs(wf__pool *p)
{
    pthread_mutex_lock(&p->mu);
    wf__req *r = p->rhead;
    p->rhead = p->rtail = NULL;
    pthread_mutex_unlock(&p->mu);
    return r;
}

static void fail_reqs_locked(wf__pool *p, const char *why)
{
    wf__req *r = p->rhead;
    p->rhead = p->rtail = NULL;
    while (r) {
        wf__req *next = r->next;
        wf_error_set(&r->err, WF_ERR_CLOSED, "%s", why);
        r->done = 1;
        sem_post(&r->sem); /* the last touch: the waiter may free r at once */
        r = next;
    }
}

void wf__pool_set_loop_running(wf__pool *p, int running)
{
    pthread_mutex_lock(&p->mu);
    p->loop_running = running;
    if (!running) fail_reqs_locked(p, "the worker is shutting down");
    pthread_mutex_unlock(&p->mu);
}

/* Queues `req` for the loop and waits for its completion (ctx.c). */
int wf__pool_call(wf__pool *p, wf__req *req)
{
    pthread_mutex_lock(&p->mu);
    if (!p->loop_running || p->orphaned || p->quit || !p->done_ev) {
        pthread_mutex_unlock(&p->mu);
        return wf_error_set(&req->err, WF_ERR_CLOSED,
                            "the worker is shutting down: no more Redis calls from handlers");
    }
    req->next = NULL;
    if (p->rtail)
        p->rtail->next = req;
    else
        p->rhead = req;
    p->rtail = req;
    event_active(p->done_ev, EV_READ, 0);
    pthread_mutex_unlock(&p->mu);
    /* Woken by wf__req_complete or the pool failing the queue, each of which fills the reply
     * and the error first; waiting on the pool's mutex instead convoyed every step's thread. */
    while (sem_wait(&req->sem) != 0 && errno == EINTR) {
    }
    return req->err.code;
}

void wf__req_complete(wf__pool *p, wf__req *req, const redisReply *reply, const wf_error *err)
{
    redisReply *copy = NULL;
    wf_error e = {0};
    if (err && err->code) {
        e = *err;
    } else if (reply) {
        copy = wf__reply_copy(reply);
        if (!copy) wf_error_set(&e, WF_ERR_NOMEM, "out of memory copying a Redis reply");
    } else {
        wf_error_set(&e, WF_ERR_IO, "connection to Redis lost before it answered");
    }
    (void)p;
    req->reply = copy;
    req->err = e;
    req->done = 1;
    sem_post(&req->sem); /* the last touch: the waiter may free req at once */
}

int wf__pool_orphan_if_running(wf__pool *p, wf__job *job)
{
    pthread_mutex_lock(&p->mu);
    int running = job->exec_state == WF__EXEC_RUNNING;
    if (running) job->orphaned = 1;
    pthread_mutex_unlock(&p->mu);
    return running;
}

void wf__pool_stop(wf__pool *p, int64_t grace_ms)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    for (slot *s = p->idle; s; s = s->next_idle) sem_post(&s->sem); /* job NULL: leave */
    p->idle = NULL;
    int64_t deadline = mono_ms() + (grace_ms > 0 ? grace_ms : 0);
    while (p->alive > 0) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->exit_cv, &p->mu, &ts);
    }
    int stuck = 0;
    for (int i = 0; i < p->nthreads; i++) {
        if (p->exited[i]) {
            pthread_mutex_unlock(&p->mu);
            pthread_join(p->threads[i], NULL);
            pthread_mutex_lock(&p->mu);
        } else {
            pthread_detach(p->threads[i]);
            stuck++;
        }
    }
    p->orphaned = 1;
    p->done_ev = NULL;
    p->loop_running = 0;
    p->qhead = p->qtail = NULL; /* queued jobs never started: the worker frees them */
    p->dhead = p->dtail = NULL; /* returned jobs: likewise */
    fail_reqs_locked(p, "the worker was freed");
    pthread_mutex_unlock(&p->mu);
    if (stuck)
        wf__log(WF__LOG_WARN,
                "%d executor thread%s still inside a handler after the drain deadline; detached "
                "(the handler's result will be dropped; restart the process to reclaim it)",
                stuck, stuck == 1 ? " is" : "s are");
}

void wf__pool_unref(wf__pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pool_destroy(p);
}
