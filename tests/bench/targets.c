/* targets.c — the TCP targets ech3-bench runs in its own process, each on an
 * ephemeral 127.0.0.1 port with one epoll thread: sink (reads and counts),
 * source (once armed, writes a stream as fast as the peer takes it), echo (writes back
 * what it reads) and idle (accepts and holds; closes when the peer does).
 * The sink discards with MSG_TRUNC (no copy to user space) unless --copy. */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TBUF (256 * 1024)

typedef struct {
    int fd;
    size_t off, len;              /* echo: pending bytes to write back */
    uint8_t *buf;                 /* echo only */
    size_t idx;                   /* index in the target's conns[] */
} tconn_t;

static const int LISTEN_TAG = -1, STOP_TAG = -2, ARM_TAG = -3;

/* source: switch a connection to writing once the target is armed */
static void source_watch(target_t *t, tconn_t *c, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (t->armed ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(t->epfd, op, c->fd, &ev);
}

static void tconn_close(target_t *t, tconn_t *c)
{
    if (t->nconns > 0) {
        tconn_t **v = (tconn_t **)t->conns;
        v[c->idx] = v[--t->nconns];
        v[c->idx]->idx = c->idx;
    }
    epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c);
    atomic_fetch_sub(&t->open, 1);
}

static void do_accept(target_t *t)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                logmsg("target accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        tconn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        struct epoll_event ev = {.data.ptr = c};
        if (t->nconns == t->capconns) {
            size_t nc = t->capconns ? t->capconns * 2 : 64;
            void *nv = realloc(t->conns, nc * sizeof(tconn_t *));
            if (!nv) {
                close(fd);
                free(c);
                return;
            }
            t->conns = nv;
            t->capconns = nc;
        }
        switch (t->kind) {
        case T_SOURCE:
            ev.events = EPOLLIN | EPOLLRDHUP | (t->armed ? EPOLLOUT : 0);
            break;
        case T_ECHO:
            c->buf = malloc(64 * 1024);
            ev.events = EPOLLIN | EPOLLRDHUP;
            break;
        default:
            ev.events = EPOLLIN | EPOLLRDHUP;
            break;
        }
        if ((t->kind == T_ECHO && !c->buf) || epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c->buf);
            free(c);
            continue;
        }
        c->idx = t->nconns;
        ((tconn_t **)t->conns)[t->nconns++] = c;
        atomic_fetch_add(&t->accepted, 1);
        atomic_fetch_add(&t->open, 1);
    }
}

/* reads and discards up to a bounded amount; returns 1 if the conn must close */
static int drain_in(target_t *t, tconn_t *c, uint8_t *buf)
{
    for (int i = 0; i < 16; i++) {
        /* TCP MSG_TRUNC discards in the kernel without a copy to user space.
         * (sendfile() at the source was tried too: it made loopback slower.) */
        ssize_t k = g_opt.copy ? read(c->fd, buf, TBUF) : recv(c->fd, NULL, TBUF, MSG_TRUNC | MSG_DONTWAIT);
        if (k > 0) {
            atomic_fetch_add_explicit(&t->bytes_in, (uint64_t)k, memory_order_relaxed);
            if ((size_t)k < TBUF)
                return 0;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return 1;
    }
    return 0;
}

static int echo_io(target_t *t, tconn_t *c, uint32_t events)
{
    for (int i = 0; i < 64; i++) {
        if (c->len > c->off) {
            ssize_t k = write(c->fd, c->buf + c->off, c->len - c->off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
                epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            if (k <= 0)
                return 1;
            atomic_fetch_add_explicit(&t->bytes_out, (uint64_t)k, memory_order_relaxed);
            c->off += (size_t)k;
            if (c->off < c->len)
                continue;
            c->off = c->len = 0;
            if (events & EPOLLOUT) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                events &= ~(uint32_t)EPOLLOUT;
            }
        }
        ssize_t k = read(c->fd, c->buf, 64 * 1024);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0)
            return 1;
        atomic_fetch_add_explicit(&t->bytes_in, (uint64_t)k, memory_order_relaxed);
        c->off = 0;
        c->len = (size_t)k;
    }
    return 0;
}

static void *target_main(void *arg)
{
    target_t *t = arg;
    uint8_t *buf = malloc(TBUF);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < TBUF; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 9));
    size_t src_off = 0;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(t->epfd, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &LISTEN_TAG) {
                do_accept(t);
                continue;
            }
            if (ptr == &STOP_TAG)
                goto out;
            if (ptr == &ARM_TAG) {
                uint64_t v;
                if (read(t->armfd, &v, sizeof v) == sizeof v && !t->armed) {
                    t->armed = 1;
                    for (size_t j = 0; j < t->nconns; j++)
                        source_watch(t, ((tconn_t **)t->conns)[j], EPOLL_CTL_MOD);
                }
                continue;
            }
            tconn_t *c = ptr;
            uint32_t e = evs[i].events;
            int dead = 0;
            switch (t->kind) {
            case T_SINK:
            case T_IDLE:
                dead = drain_in(t, c, buf);
                break;
            case T_ECHO:
                dead = echo_io(t, c, e);
                break;
            case T_SOURCE:
                if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    dead = drain_in(t, c, buf) || (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
                if (!dead && (e & EPOLLOUT)) {
                    for (int j = 0; j < 8; j++) {
                        ssize_t k = write(c->fd, buf + src_off, TBUF - src_off);
                        if (k > 0) {
                            atomic_fetch_add_explicit(&t->bytes_out, (uint64_t)k, memory_order_relaxed);
                            src_off = (src_off + (size_t)k) % TBUF;
                            continue;
                        }
                        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                            break;
                        dead = 1;
                        break;
                    }
                }
                break;
            }
            if (!dead && (e & (EPOLLHUP | EPOLLERR)))
                dead = 1;
            if (dead)
                tconn_close(t, c);
        }
    }
out:
    free(buf);
    return NULL;
}

int target_start(target_t *t, target_kind_t kind, const char *bind_host)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->lfd = t->epfd = t->evfd = t->armfd = -1;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (strchr(bind_host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, bind_host, &a->sin6_addr) != 1)
            goto bad_host;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, bind_host, &a->sin_addr) != 1)
            goto bad_host;
        sl = sizeof *a;
    }
    t->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(t->lfd, 4096) < 0) {
        logmsg("target listen on %s: %s", bind_host, strerror(errno));
        return -1;
    }
    getsockname(t->lfd, (struct sockaddr *)&ss, &sl);
    t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    t->armfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)&LISTEN_TAG};
    struct epoll_event sv = {.events = EPOLLIN, .data.ptr = (void *)&STOP_TAG};
    struct epoll_event av = {.events = EPOLLIN, .data.ptr = (void *)&ARM_TAG};
    if (t->epfd < 0 || t->evfd < 0 || t->armfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &sv) < 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->armfd, &av) < 0) {
        logmsg("target epoll: %s", strerror(errno));
        return -1;
    }
    if (spawn_thread(&t->thr, target_main, t) != 0) {
        logmsg("target thread: %s", strerror(errno));
        return -1;
    }
    return 0;
bad_host:
    logmsg("--target-host must be a numeric address: %s", bind_host);
    return -1;
}

void target_arm(target_t *t)
{
    uint64_t one = 1;
    if (write(t->armfd, &one, sizeof one) < 0)
        logmsg("target arm: %s", strerror(errno));
}

void target_stop(target_t *t)
{
    if (t->evfd < 0)
        return;
    uint64_t one = 1;
    if (write(t->evfd, &one, sizeof one) < 0)
        logmsg("target stop: %s", strerror(errno));
    pthread_join(t->thr, NULL);
    while (t->nconns > 0)
        tconn_close(t, ((tconn_t **)t->conns)[t->nconns - 1]);
    close(t->lfd);
    close(t->evfd);
    close(t->armfd);
    close(t->epfd);
    free(t->conns);
    t->evfd = -1;
}
