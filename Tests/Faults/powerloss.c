/*
 * Tests/Faults/powerloss.c: an LD_PRELOAD library that records what a member has made durable, so
 * that after a kill -9 `powerloss.py` can take away what a power cut would have: every byte
 * written to a file since its last fsync/fdatasync. Used by Tests/Cluster/power-loss.sh and the
 * Jepsen nemesis.
 *
 * kill -9 alone never loses a write: the kernel's page cache outlives the process. A power cut
 * loses whatever the disk was not told to keep. This library appends one line per event to
 * POWERLOSS_LOG (opened with O_APPEND, one write per line), for files under POWERLOSS_DIR only:
 *   open SIZE PATH      a file opened for writing, and its size then (a file created now: 0)
 *   sync SIZE PATH      an fsync/fdatasync of it succeeded; SIZE bytes, its size before the call,
 *                       are durable
 *   rename OLD NEW      a rename (the durable size follows the file)
 *   unlink PATH         a file removed
 * Sizes only: the writers under test (RocksDB, kvd's own files) append and never overwrite a
 * synced byte, so "the first SIZE bytes" is exactly what survives. Directory entries are taken as
 * durable (a file created and never synced survives empty, as ext4 leaves it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_fd = -2;
static const char *root;
static size_t root_length;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);

static void setup(void) {
    if (log_fd != -2) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    root = getenv("POWERLOSS_DIR");
    root_length = root ? strlen(root) : 0;
    const char *path = getenv("POWERLOSS_LOG");
    log_fd = (path && root) ? real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
}

__attribute__((constructor)) static void powerloss_init(void) { setup(); }

static int watched(const char *path) {
    return log_fd >= 0 && path && path[0] == '/' && strncmp(path, root, root_length) == 0;
}

static void record(const char *event, long long size, const char *a, const char *b) {
    char line[2 * PATH_MAX + 64];
    int n = size >= 0 ? snprintf(line, sizeof line, "%s %lld %s\n", event, size, a)
                      : snprintf(line, sizeof line, "%s %s %s\n", event, a, b ? b : "");
    if (n > 0 && n < (int)sizeof line) {
        ssize_t written = write(log_fd, line, (size_t)n);
        (void)written;
    }
}

static void opened(int fd, const char *path, int flags) {
    if (fd < 0 || !(flags & (O_WRONLY | O_RDWR)) || !watched(path)) return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) record("open", (long long)st.st_size, path, NULL);
}

/* The mode argument of an open call: present only when the call may create a file. */
#define MODE_ARGUMENT(flags, mode)                          \
    do {                                                    \
        if ((flags) & (O_CREAT | O_TMPFILE)) {              \
            va_list args;                                   \
            va_start(args, flags);                          \
            (mode) = va_arg(args, mode_t);                  \
            va_end(args);                                   \
        }                                                   \
    } while (0)

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    MODE_ARGUMENT(flags, mode);
    setup();
    int fd = real_open(path, flags, mode);
    opened(fd, path, flags);
    return fd;
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    MODE_ARGUMENT(flags, mode);
    setup();
    int fd = real_openat(dirfd, path, flags, mode);
    opened(fd, path, flags); /* absolute paths only: a relative one is not watched */
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

static int synced(int fd, int (*real)(int)) {
    setup();
    char link[64], path[PATH_MAX];
    struct stat st;
    long long size = -1;
    ssize_t n = -1;
    if (log_fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof path - 1);
        if (n > 0) {
            path[n] = '\0';
            size = (long long)st.st_size;
        }
    }
    int result = real(fd);
    if (result == 0 && size >= 0 && watched(path)) record("sync", size, path, NULL);
    return result;
}

int fsync(int fd) { return synced(fd, (setup(), real_fsync)); }
int fdatasync(int fd) { return synced(fd, (setup(), real_fdatasync)); }

int rename(const char *old, const char *new) {
    setup();
    int result = real_rename(old, new);
    if (result == 0 && (watched(old) || watched(new))) record("rename", -1, old, new);
    return result;
}

int unlink(const char *path) {
    setup();
    int result = real_unlink(path);
    if (result == 0 && watched(path)) record("unlink", -1, path, NULL);
    return result;
}
