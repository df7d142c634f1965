/*
 * Tests/Faults/clockshift.c: an LD_PRELOAD library that shifts a process's wall clock, for the
 * Jepsen nemesis's clock jumps and skews. CLOCKSHIFT_FILE names a file holding an offset in
 * seconds ("+7200", "-30", "+0"), read again at most once a second; CLOCK_REALTIME (and its
 * coarse variant), gettimeofday and time answer the real time plus that offset. The monotonic
 * and boot-time clocks are left alone, as a real clock step (NTP, an operator) leaves them.
 *
 * Not libfaketime: it recurses into clock_gettime during start-up under kvd's allocator. Here the
 * real clock_gettime is looked up on first use, and a call that arrives while it is being looked
 * up goes to the system call directly.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic(clock_gettime_fn) real_clock_gettime;
static atomic_int resolving;
static atomic_long offset_seconds;
static atomic_long offset_read_at = -1; /* CLOCK_MONOTONIC seconds of the last read */

static int raw_clock_gettime(clockid_t clock, struct timespec *ts) {
    clock_gettime_fn real = atomic_load(&real_clock_gettime);
    if (real == NULL) {
        if (atomic_exchange(&resolving, 1) == 0) {
            real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
            atomic_store(&real_clock_gettime, real);
        }
        if (real == NULL) return (int)syscall(SYS_clock_gettime, clock, ts);
    }
    return real(clock, ts);
}

/* The offset now asked for, read from CLOCKSHIFT_FILE at most once a second. */
static long offset(void) {
    struct timespec now;
    if (raw_clock_gettime(CLOCK_MONOTONIC, &now) != 0) return atomic_load(&offset_seconds);
    long last = atomic_load(&offset_read_at);
    if (last >= 0 && now.tv_sec - last < 1) return atomic_load(&offset_seconds);
    if (!atomic_compare_exchange_strong(&offset_read_at, &last, now.tv_sec)) return atomic_load(&offset_seconds);
    const char *path = getenv("CLOCKSHIFT_FILE");
    if (path == NULL) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return atomic_load(&offset_seconds);
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n > 0) {
        text[n] = '\0';
        atomic_store(&offset_seconds, strtol(text, NULL, 10));
    }
    return atomic_load(&offset_seconds);
}

static int is_wall_clock(clockid_t clock) { return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE; }

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = raw_clock_gettime(clock, ts);
    if (result == 0 && is_wall_clock(clock)) ts->tv_sec += offset();
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    if (tv != NULL) {
        tv->tv_sec = now.tv_sec;
        tv->tv_usec = now.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return (time_t)-1;
    if (out != NULL) *out = now.tv_sec;
    return now.tv_sec;
}
