/* scratch.c: kernels' scratch memory (the GEMM's accumulator and packed panels), one set per
 * thread for every kernel module of the process.
 *
 * Loaded once per process into the global symbol scope, before any kernel module: kernels
 * call lazytorch_scratch / lazytorch_release by name (runtime/scratch.py). Each thread has
 * SLOTS grow-only buffers, kept between calls (fresh pages cost a fault each); a buffer over
 * KEEP bytes is given back when its kernel releases it.
 *
 * Every thread's record is in one registry, so lazytorch_scratch_trim() frees all of them from
 * any thread. A slot that a kernel holds (from lazytorch_scratch to lazytorch_release, on any
 * thread, OpenMP workers included) is never freed under it: the trim marks it instead, and the
 * holder's release frees it. The holder's own path takes no lock: one compare-and-swap on the
 * slot's state. A thread's buffers are freed when it exits; a forked child keeps only the
 * forking thread's. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))
#define SLOTS 4
#define KEEP ((size_t)16 << 20)

enum { IDLE, HELD, TRIMMING };   /* a slot's state: held by its thread's kernel, or being freed */

typedef struct Thread {
    void *buf[SLOTS];
    size_t cap[SLOTS];
    _Atomic int state[SLOTS];
    _Atomic int trim[SLOTS];     /* free the slot when its holder releases it */
    struct Thread *prev, *next;
} Thread;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards the registry */
static Thread *g_threads;
static pthread_key_t g_key;     /* the calling thread's record; its destructor frees it */
static _Atomic size_t g_bytes;  /* held by all threads */

/* free slot s of t: its holder (state HELD), or whoever set it TRIMMING, or with t unlisted */
static void drop(Thread *t, int s) {
    if (t->buf[s] != NULL) {
        free(t->buf[s]);
        atomic_fetch_sub_explicit(&g_bytes, t->cap[s], memory_order_relaxed);
        t->buf[s] = NULL;
        t->cap[s] = 0;
    }
}

static void link_thread(Thread *t) {
    t->prev = NULL;
    t->next = g_threads;
    if (g_threads != NULL)
        g_threads->prev = t;
    g_threads = t;
}

static void unlink_thread(Thread *t) {
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        g_threads = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

static Thread *enroll(void) {
    Thread *t = calloc(1, sizeof(Thread));
    if (t == NULL || pthread_setspecific(g_key, t) != 0)
        abort();
    pthread_mutex_lock(&g_mu);
    link_thread(t);
    pthread_mutex_unlock(&g_mu);
    return t;
}

/* thread exit: its kernels have all returned */
static void forget(void *p) {
    Thread *t = p;
    pthread_mutex_lock(&g_mu);
    unlink_thread(t);
    pthread_mutex_unlock(&g_mu);
    for (int s = 0; s < SLOTS; s++)
        drop(t, s);
    free(t);
}

/* fork: no trim runs across it; the child has only the forking thread (not in a kernel) */
static void fork_prepare(void) { pthread_mutex_lock(&g_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&g_mu); }
static void fork_child(void) {
    Thread *self = pthread_getspecific(g_key), *t = g_threads;
    while (t != NULL) {
        Thread *next = t->next;
        if (t != self) {
            for (int s = 0; s < SLOTS; s++)
                drop(t, s);
            free(t);
        }
        t = next;
    }
    g_threads = NULL;
    if (self != NULL)
        link_thread(self);
    pthread_mutex_init(&g_mu, NULL);
}

__attribute__((constructor)) static void init(void) {
    if (pthread_key_create(&g_key, forget) != 0 ||
        pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        abort();
}

/* the calling thread's buffer `slot`, at least `bytes` long, held until lazytorch_release */
EXPORT void *lazytorch_scratch(int slot, size_t bytes) {
    Thread *t = pthread_getspecific(g_key);
    if (t == NULL)
        t = enroll();
    if ((unsigned)slot >= SLOTS)
        abort();
    int idle = IDLE;
    while (!atomic_compare_exchange_weak_explicit(&t->state[slot], &idle, HELD,
                                                  memory_order_acquire, memory_order_relaxed)) {
        if (idle == HELD)   /* held already (only this thread sets HELD): the same buffer */
            break;
        if (idle == TRIMMING)   /* a trim is freeing it (one free() call) */
            sched_yield();
        idle = IDLE;
    }
    if (bytes > t->cap[slot]) {
        drop(t, slot);
        size_t cap = (bytes + 4095) & ~(size_t)4095;
        t->buf[slot] = aligned_alloc(64, cap);
        if (t->buf[slot] == NULL)
            abort();
        t->cap[slot] = cap;
        atomic_fetch_add_explicit(&g_bytes, cap, memory_order_relaxed);
    }
    return t->buf[slot];
}

/* the kernel is done with `slot` (a slot it does not hold is left alone) */
EXPORT void lazytorch_release(int slot) {
    Thread *t = pthread_getspecific(g_key);
    if (t == NULL || (unsigned)slot >= SLOTS ||
        atomic_load_explicit(&t->state[slot], memory_order_relaxed) != HELD)
        return;
    int trimmed = atomic_load_explicit(&t->trim[slot], memory_order_relaxed) &&
                  atomic_exchange_explicit(&t->trim[slot], 0, memory_order_relaxed);
    if (trimmed || t->cap[slot] > KEEP)
        drop(t, slot);
    atomic_store_explicit(&t->state[slot], IDLE, memory_order_release);
}

/* take slot s of t from IDLE to TRIMMING and free it; false if it is held */
static int try_trim(Thread *t, int s) {
    int idle = IDLE;
    if (!atomic_compare_exchange_strong_explicit(&t->state[s], &idle, TRIMMING,
                                                 memory_order_acquire, memory_order_relaxed))
        return 0;
    drop(t, s);
    atomic_store_explicit(&t->trim[s], 0, memory_order_relaxed);
    atomic_store_explicit(&t->state[s], IDLE, memory_order_release);
    return 1;
}

/* free every thread's idle buffers; a held one is freed by its release. Returns the bytes
   still held (by kernels running now). */
EXPORT size_t lazytorch_scratch_trim(void) {
    pthread_mutex_lock(&g_mu);
    for (Thread *t = g_threads; t != NULL; t = t->next)
        for (int s = 0; s < SLOTS; s++)
            if (!try_trim(t, s)) {
                atomic_store_explicit(&t->trim[s], 1, memory_order_relaxed);
                try_trim(t, s);   /* released meanwhile? */
            }
    pthread_mutex_unlock(&g_mu);
    return atomic_load_explicit(&g_bytes, memory_order_relaxed);
}

/* bytes of scratch all threads hold */
EXPORT size_t lazytorch_scratch_bytes(void) {
    return atomic_load_explicit(&g_bytes, memory_order_relaxed);
}

/* threads with a record (each has called lazytorch_scratch and not exited) */
EXPORT int lazytorch_scratch_threads(void) {
    int n = 0;
    pthread_mutex_lock(&g_mu);
    for (Thread *t = g_threads; t != NULL; t = t->next)
        n++;
    pthread_mutex_unlock(&g_mu);
    return n;
}
