/*
 * Tests/Faults/diskfault.c: an LD_PRELOAD library that makes fsync and fdatasync fail or slow down
 * on demand, for Tests/Cluster/disk-faults.sh and the Jepsen nemesis. DISKFAULT_CONTROL names a
 * file read at every call; its first word says what the call does:
 *   (absent, empty)  sync as usual
 *   eio              fail with EIO, without syncing (what a dying disk, or a lost write, reports)
 *   delay MS         wait MS milliseconds, then sync (a slow disk)
 * Each faulted call is reported on stderr ("diskfault: ..."), so a test can tell that it was hit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum fault { NONE, EIO_FAULT, DELAY };

/* The fault now asked for; `delay_ms` is set for DELAY. Reads with open/read only (no stdio). */
static enum fault current(long *delay_ms) {
    const char *path = getenv("DISKFAULT_CONTROL");
    if (path == NULL) return NONE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NONE;
    char text[64];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return NONE;
    text[n] = '\0';
    if (strncmp(text, "eio", 3) == 0) return EIO_FAULT;
    if (strncmp(text, "delay ", 6) == 0) {
        *delay_ms = strtol(text + 6, NULL, 10);
        return DELAY;
    }
    return NONE;
}

static int faulted(const char *name, int fd, int (*real)(int)) {
    long delay_ms = 0;
    switch (current(&delay_ms)) {
    case EIO_FAULT:
        fprintf(stderr, "diskfault: %s(%d) -> EIO\n", name, fd);
        errno = EIO;
        return -1;
    case DELAY: {
        struct timespec pause = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        fprintf(stderr, "diskfault: %s(%d) delayed %ld ms\n", name, fd, delay_ms);
        break;
    }
    case NONE:
        break;
    }
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return faulted("fsync", fd, real);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return faulted("fdatasync", fd, real);
}
