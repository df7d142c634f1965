// glibc's DNS resolver (libresolv), for the SRV lookups of etcd's DNS discovery.
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <netdb.h>

// glibc defines res_search as a macro naming __res_search, which Swift does not import.
static inline int kvd_res_search(const char *name, int class, int type, unsigned char *answer, int length) {
    return res_search(name, class, type, answer, length);
}

// h_errno is a macro too (a thread's own error of its last lookup).
static inline int kvd_h_errno(void) { return h_errno; }
