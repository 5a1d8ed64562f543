/* scenarios.c — the measurements of ech3-bench: bulk throughput (c2t, t2c,
 * c2t64, t2c64), tunnel setup rate (setup-seq, setup-32), 64-byte echo round
 * trip (echo) and held idle tunnels for memory measurement (idle N). Each
 * scenario is bounded in count and time and prints its result lines. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int g_stop;
static atomic_int g_go;

/* ====================================================================== */
/* bulk                                                                    */
/* ====================================================================== */
typedef struct {
    int c2t;
    wsr_t r;
    uint8_t *rbuf;
    pthread_t th;
    int err;
    char errmsg[160];
} btun_t;

static const uint8_t *g_pattern;
static _Atomic uint64_t g_rx; /* t2c: payload bytes received by the clients */

static void wait_go(void)
{
    while (!atomic_load(&g_go))
        sleep_s(0.0005);
}

static void *bulk_writer(void *arg)
{
    btun_t *b = arg;
    size_t frame = g_opt.frame;
    uint8_t *buf = malloc(frame + 14);
    if (!buf) {
        b->err = 1;
        return NULL;
    }
    wait_go();
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        size_t n = ws_build_frame(buf, WS_BIN, g_pattern, frame);
        if (write_all(b->r.fd, buf, n) < 0) {
            b->err = 1;
            snprintf(b->errmsg, sizeof b->errmsg, "write: %s", strerror(errno));
            break;
        }
    }
    free(buf);
    ws_tunnel_close(&b->r, 2.0);
    ws_thread_done();
    return NULL;
}

static void *bulk_reader(void *arg)
{
    btun_t *b = arg;
    wait_go();
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        const uint8_t *p;
        size_t n;
        ws_ev_t e = ws_recv(&b->r, &p, &n);
        if (e == EV_DATA) {
            atomic_fetch_add_explicit(&g_rx, n, memory_order_relaxed);
            continue;
        }
        if (e == EV_TEXT)
            continue;
        b->err = 1;
        snprintf(b->errmsg, sizeof b->errmsg, "receive: %s",
                 e == EV_EOF ? "EOF" : e == EV_CLOSE ? "close frame" : e == EV_AGAIN ? "timed out" : strerror(errno));
        break;
    }
    ws_tunnel_close(&b->r, 2.0);
    ws_thread_done();
    return NULL;
}

int sc_bulk(int c2t, int tunnels)
{
    target_t tgt;
    if (target_start(&tgt, c2t ? T_SINK : T_SOURCE, g_opt.target_host) < 0)
        return 2;
    uint8_t *pat = malloc(g_opt.frame);
    if (!pat)
        return 2;
    for (size_t i = 0; i < g_opt.frame; i++)
        pat[i] = (uint8_t)(i * 7 + (i >> 11));
    g_pattern = pat;

    btun_t *bt = calloc((size_t)tunnels, sizeof *bt);
    size_t rcap = c2t || !g_opt.copy ? 8192 : 256 * 1024;
    for (int i = 0; i < tunnels; i++) {
        char err[256];
        bt[i].c2t = c2t;
        bt[i].rbuf = malloc(rcap);
        bt[i].r.buf = bt[i].rbuf;
        bt[i].r.cap = rcap;
        if (ws_open_tunnel(&bt[i].r, tgt.port, err, sizeof err) < 0) {
            logmsg("tunnel %d: %s", i, err);
            return 2;
        }
        bt[i].r.discard = !g_opt.copy;
        if (spawn_thread(&bt[i].th, c2t ? bulk_writer : bulk_reader, &bt[i]) != 0) {
            logmsg("thread: %s", strerror(errno));
            return 2;
        }
    }
    double warm = g_opt.warmup >= 0 ? g_opt.warmup : (g_opt.seconds * 0.2 < 0.3 ? 0.3 : g_opt.seconds * 0.2 > 1.0 ? 1.0 : g_opt.seconds * 0.2);
    double t0 = now_s();
    atomic_store(&g_go, 1);
    if (!c2t)
        target_arm(&tgt);
    sleep_s(warm);
    uint64_t b0 = c2t ? atomic_load(&tgt.bytes_in) : atomic_load(&g_rx);
    double ta = now_s();
    sleep_s(g_opt.seconds);
    uint64_t b1 = c2t ? atomic_load(&tgt.bytes_in) : atomic_load(&g_rx);
    double tb = now_s();
    atomic_store(&g_stop, 1);
    int errors = 0;
    uint64_t total = 0;
    for (int i = 0; i < tunnels; i++) {
        pthread_join(bt[i].th, NULL);
        if (bt[i].err) {
            if (errors == 0)
                logmsg("tunnel %d: %s", i, bt[i].errmsg);
            errors++;
        }
        total += bt[i].r.bin_bytes;
        free(bt[i].rbuf);
    }
    if (c2t) {
        /* let the server flush what it still holds (bounded) */
        uint64_t last = atomic_load(&tgt.bytes_in);
        for (int k = 0; k < 20; k++) {
            sleep_s(0.05);
            uint64_t cur = atomic_load(&tgt.bytes_in);
            if (cur == last)
                break;
            last = cur;
        }
        total = atomic_load(&tgt.bytes_in);
    }
    double t_end = now_s();
    target_stop(&tgt);

    double win = tb - ta;
    double mbps = win > 0 ? (double)(b1 - b0) / win / 1e6 : 0;
    char name[32];
    snprintf(name, sizeof name, "%s%s", c2t ? "c2t" : "t2c", tunnels == 1 ? "" : tunnels == 64 ? "64" : "N");
    out_begin(name);
    out_int("tunnels", tunnels);
    out_int("frame", (long long)g_opt.frame);
    out_num("seconds", win);
    out_int("bytes", (long long)(b1 - b0));
    out_num("mbps", mbps);
    out_int("bytes_total", (long long)total);
    out_num("elapsed", t_end - t0);
    out_int("errors", errors);
    out_end();
    free(bt);
    free(pat);
    return errors ? 1 : 0;
}

/* ====================================================================== */
/* setup rate                                                              */
/* ====================================================================== */
typedef struct {
    pthread_t th;
    double *lat;
    size_t n, cap;
    long errors;
    double t_end;
    char err[256];
} sworker_t;

static _Atomic long g_issued;
static long g_limit;
static int g_setup_port;
static atomic_int g_workers_done;

static void *setup_worker(void *arg)
{
    sworker_t *w = arg;
    uint8_t rb[4096];
    wsr_t r;
    wait_go();
    while (!atomic_load(&g_stop)) {
        long i = atomic_fetch_add(&g_issued, 1);
        if (i >= g_limit)
            break;
        double t0 = now_s();
        r.buf = rb;
        r.cap = sizeof rb;
        char err[256];
        int fd = ws_open_tunnel(&r, g_setup_port, err, sizeof err);
        if (fd < 0) {
            if (!w->errors)
                snprintf(w->err, sizeof w->err, "%s", err);
            w->errors++;
            sleep_s(0.001);
            continue;
        }
        double t1 = now_s();
        ws_send(fd, WS_TEXT, "CLOSE", 5);
        close(fd); /* clients drop TCP right after CLOSE */
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 4096;
            double *nl = realloc(w->lat, nc * sizeof *nl);
            if (!nl)
                break;
            w->lat = nl;
            w->cap = nc;
        }
        w->lat[w->n++] = (t1 - t0) * 1e3;
    }
    w->t_end = now_s();
    atomic_fetch_add(&g_workers_done, 1);
    ws_thread_done();
    return NULL;
}

int sc_setup(int concurrency)
{
    target_t tgt;
    if (target_start(&tgt, T_SINK, g_opt.target_host) < 0)
        return 2;
    g_setup_port = tgt.port;
    g_limit = g_opt.count > 0 ? g_opt.count : 20000;
    sworker_t *w = calloc((size_t)concurrency, sizeof *w);
    for (int i = 0; i < concurrency; i++)
        if (spawn_thread(&w[i].th, setup_worker, &w[i]) != 0) {
            logmsg("thread: %s", strerror(errno));
            return 2;
        }
    double t0 = now_s();
    atomic_store(&g_go, 1);
    double deadline = t0 + g_opt.seconds;
    while (now_s() < deadline && atomic_load(&g_workers_done) < concurrency)
        sleep_s(0.005);
    atomic_store(&g_stop, 1);
    size_t total = 0;
    long errors = 0;
    double t_end = t0;
    for (int i = 0; i < concurrency; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].n;
        errors += w[i].errors;
        if (w[i].t_end > t_end)
            t_end = w[i].t_end;
        if (w[i].errors && errors == w[i].errors)
            logmsg("setup error: %s", w[i].err);
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < concurrency; i++) {
        memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    double el = t_end - t0;
    out_begin(concurrency == 1 ? "setup-seq" : concurrency == 32 ? "setup-32" : "setup-N");
    out_int("concurrency", concurrency);
    out_int("tunnels", (long long)total);
    out_num("seconds", el);
    out_num("rate", el > 0 ? (double)total / el : 0);
    out_num("p50_ms", percentile(all, total, 0.50));
    out_num("p99_ms", percentile(all, total, 0.99));
    out_num("max_ms", total ? all[total - 1] : 0);
    out_int("errors", errors);
    out_end();
    free(all);
    free(w);
    /* give the server a moment to finish the last closes before the sink goes away */
    sleep_s(0.1);
    target_stop(&tgt);
    return total == 0 ? 2 : errors ? 1 : 0;
}

/* ====================================================================== */
/* echo round trip                                                         */
/* ====================================================================== */
int sc_echo(void)
{
    target_t tgt;
    if (target_start(&tgt, T_ECHO, g_opt.target_host) < 0)
        return 2;
    size_t sz = g_opt.msg_size;
    long count = g_opt.count > 0 ? g_opt.count : 10000;
    long warm = count / 10 < 200 ? count / 10 : 200;
    uint8_t *msg = malloc(sz), *frame = malloc(sz + 14), *rbuf = malloc(64 * 1024);
    double *lat = malloc((size_t)count * sizeof *lat);
    if (!msg || !frame || !rbuf || !lat)
        return 2;
    rand_fill(msg, sz);
    wsr_t r;
    r.buf = rbuf;
    r.cap = 64 * 1024;
    char err[256];
    if (ws_open_tunnel(&r, tgt.port, err, sizeof err) < 0) {
        logmsg("echo tunnel: %s", err);
        return 2;
    }
    double cap_s = g_opt.seconds > 20 ? g_opt.seconds : 20;
    double t_start = now_s(), deadline = t_start + cap_s;
    long n = 0, mismatch = 0;
    int rc = 0;
    for (long i = 0; i < warm + count; i++) {
        if ((i & 63) == 0 && now_s() > deadline) {
            logmsg("echo: time cap of %.0f s reached after %ld round trips", cap_s, i);
            break;
        }
        double t0 = now_s();
        size_t fl = ws_build_frame(frame, WS_BIN, msg, sz);
        if (write_all(r.fd, frame, fl) < 0) {
            logmsg("echo write: %s", strerror(errno));
            rc = 1;
            break;
        }
        size_t got = 0;
        while (got < sz) {
            const uint8_t *p;
            size_t k;
            ws_ev_t e = ws_recv(&r, &p, &k);
            if (e == EV_DATA) {
                if (got + k > sz || memcmp(p, msg + got, k) != 0)
                    mismatch++;
                got += k;
            } else if (e != EV_TEXT) {
                logmsg("echo receive: %s", e == EV_EOF ? "EOF" : e == EV_CLOSE ? "close frame" : strerror(errno));
                rc = 1;
                break;
            }
        }
        if (rc)
            break;
        double t1 = now_s();
        if (i >= warm)
            lat[n++] = (t1 - t0) * 1e6;
    }
    ws_tunnel_close(&r, 1.0);
    target_stop(&tgt);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    out_begin("echo");
    out_int("size", (long long)sz);
    out_int("count", n);
    out_num("p50_us", percentile(lat, (size_t)n, 0.50));
    out_num("p99_us", percentile(lat, (size_t)n, 0.99));
    out_num("p999_us", percentile(lat, (size_t)n, 0.999));
    out_num("mean_us", n ? sum / (double)n : 0);
    out_num("max_us", n ? lat[n - 1] : 0);
    out_int("mismatch", mismatch);
    out_int("errors", rc);
    out_end();
    free(msg);
    free(frame);
    free(rbuf);
    free(lat);
    return n == 0 ? 2 : rc || mismatch || n < count ? 1 : 0;
}

/* ====================================================================== */
/* idle tunnels                                                            */
/* ====================================================================== */
static int *g_idle_fds;
static long g_idle_n;
static _Atomic long g_idle_next, g_idle_err, g_idle_ok;
static int g_idle_port;
static char g_idle_errmsg[256];

static void *idle_opener(void *arg)
{
    (void)arg;
    uint8_t rb[4096];
    wsr_t r;
    for (;;) {
        long i = atomic_fetch_add(&g_idle_next, 1);
        if (i >= g_idle_n)
            break;
        if (atomic_load(&g_idle_err) > (g_idle_n / 10 + 10 < 50 ? g_idle_n / 10 + 10 : 50))
            break; /* the server is failing: give up */
        r.buf = rb;
        r.cap = sizeof rb;
        char err[256];
        int fd = ws_open_tunnel(&r, g_idle_port, err, sizeof err);
        if (fd < 0) {
            if (atomic_fetch_add(&g_idle_err, 1) == 0)
                snprintf(g_idle_errmsg, sizeof g_idle_errmsg, "%s", err);
            continue;
        }
        if (r.end > r.beg)
            vlog("idle: %zu unexpected bytes after CONNECTED", r.end - r.beg);
        g_idle_fds[i] = fd;
        atomic_fetch_add(&g_idle_ok, 1);
    }
    ws_thread_done();
    return NULL;
}

int sc_idle(void)
{
    target_t tgt;
    if (target_start(&tgt, T_IDLE, g_opt.target_host) < 0)
        return 2;
    g_idle_port = tgt.port;
    g_idle_n = g_opt.count > 0 ? g_opt.count : 1000;
    g_idle_fds = malloc((size_t)g_idle_n * sizeof *g_idle_fds);
    wsr_t **rd = calloc((size_t)g_idle_n, sizeof *rd);
    if (!g_idle_fds || !rd)
        return 2;
    for (long i = 0; i < g_idle_n; i++)
        g_idle_fds[i] = -1;
    int par = g_opt.parallel > 0 ? g_opt.parallel : 16;
    if (par > g_idle_n)
        par = (int)g_idle_n;
    pthread_t *th = calloc((size_t)par, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < par; i++)
        if (spawn_thread(&th[i], idle_opener, NULL) != 0) {
            logmsg("thread: %s", strerror(errno));
            return 2;
        }
    for (int i = 0; i < par; i++)
        pthread_join(th[i], NULL);
    free(th);
    double t_open = now_s() - t0;
    long ok = atomic_load(&g_idle_ok), errs = atomic_load(&g_idle_err);
    if (errs)
        logmsg("idle: %ld tunnels failed to open; first error: %s", errs, g_idle_errmsg);
    /* the target side of each CONNECTED tunnel should have been accepted by now */
    for (int k = 0; k < 200 && atomic_load(&tgt.accepted) < ok; k++)
        sleep_s(0.01);

    out_begin("idle");
    out_str("event", "ready");
    out_int("tunnels", ok);
    out_int("requested", g_idle_n);
    out_int("errors", errs);
    out_num("open_s", t_open);
    out_num("rate", t_open > 0 ? (double)ok / t_open : 0);
    out_int("target_open", atomic_load(&tgt.open));
    out_int("pid", (long long)getpid());
    out_end();

    /* hold: answer pings, notice drops, stop on SIGTERM/SIGINT, stdin EOF or --hold */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (long i = 0; i < g_idle_n; i++) {
        if (g_idle_fds[i] < 0)
            continue;
        fcntl(g_idle_fds[i], F_SETFL, fcntl(g_idle_fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, g_idle_fds[i], &ev);
    }
    int watch_stdin = 0;
    if (g_opt.hold < 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = UINT64_MAX};
        watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) == 0; /* fails for /dev/null: then SIGTERM only */
    }
    double hold = g_opt.hold >= 0 ? g_opt.hold : 3600.0;
    double th0 = now_s(), hold_end = th0 + hold;
    long dropped = 0;
    const char *why = "hold elapsed";
    struct epoll_event evs[128];
    while (!g_signalled) {
        double left = hold_end - now_s();
        if (left <= 0)
            break;
        int n = epoll_wait(ep, evs, 128, left > 0.2 ? 200 : (int)(left * 1000) + 1);
        if (n < 0)
            continue; /* EINTR from the signal */
        for (int j = 0; j < n; j++) {
            uint64_t i = evs[j].data.u64;
            if (i == UINT64_MAX) {
                char b[256];
                ssize_t k = read(0, b, sizeof b);
                if (k <= 0) {
                    why = "stdin closed";
                    goto done;
                }
                continue;
            }
            if (!rd[i]) {
                rd[i] = malloc(sizeof(wsr_t) + 4096);
                if (!rd[i])
                    continue;
                wsr_init(rd[i], g_idle_fds[i], (uint8_t *)(rd[i] + 1), 4096);
            }
            for (;;) {
                const uint8_t *p;
                size_t k;
                ws_ev_t e = ws_recv(rd[i], &p, &k);
                if (e == EV_DATA || e == EV_TEXT)
                    continue;
                if (e == EV_AGAIN)
                    break;
                /* close frame, EOF or error: the server dropped the tunnel */
                epoll_ctl(ep, EPOLL_CTL_DEL, g_idle_fds[i], NULL);
                close(g_idle_fds[i]);
                g_idle_fds[i] = -1;
                dropped++;
                break;
            }
        }
    }
    if (g_signalled)
        why = "signal";
done:;
    double held = now_s() - th0;
    for (long i = 0; i < g_idle_n; i++) {
        if (g_idle_fds[i] < 0)
            continue;
        ws_send(g_idle_fds[i], WS_TEXT, "CLOSE", 5);
        close(g_idle_fds[i]);
    }
    for (long i = 0; i < g_idle_n; i++)
        free(rd[i]);
    close(ep);
    out_begin("idle");
    out_str("event", "done");
    out_int("tunnels", ok);
    out_int("dropped", dropped);
    out_num("held_s", held);
    out_str("reason", why);
    out_end();
    (void)watch_stdin;
    free(g_idle_fds);
    free(rd);
    target_stop(&tgt);
    return ok == 0 ? 2 : errs ? 1 : 0;
}
