/* LD_PRELOAD shim for tests/test_socket.py: after every successful bind() of a UNIX socket,
 * record the socket file's mode, uid and gid *at that instant*, before the caller can run any
 * chmod or chown. This makes "the socket never exists with wider permissions" checkable
 * deterministically instead of by racing a watcher against the server. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int rc = real_bind(fd, addr, len);
    const char *out = getenv("BINDSPY_LOG");
    if (rc == 0 && out && addr->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
        struct stat st;
        if (un->sun_path[0] && lstat(un->sun_path, &st) == 0) {
            FILE *f = fopen(out, "a");
            if (f) {
                fprintf(f, "%s %o %d %d\n", un->sun_path, st.st_mode & 07777, (int)st.st_uid, (int)st.st_gid);
                fclose(f);
            }
        }
    }
    return rc;
}
