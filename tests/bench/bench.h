/* bench.h — shared declarations of the ech3 load generator (ech3-bench):
 * time helpers, the WebSocket client API (ws_client.c), the local TCP
 * targets (targets.c), the scenarios (scenarios.c) and the options/output
 * helpers (ech3-bench.c). */
#ifndef ECH3_BENCH_H
#define ECH3_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>

/* ---------- time ---------- */
double now_s(void);               /* CLOCK_MONOTONIC seconds */
void sleep_s(double s);

/* ---------- options (filled by ech3-bench.c) ---------- */
typedef struct {
    const char *url;
    char host[256];               /* server host from the URL */
    char port[16];                /* server port from the URL */
    char path[512];               /* request path from the URL */
    const char *token;            /* Sec-WebSocket-Protocol value, may be NULL */
    const char *scenario;
    double seconds;               /* measurement window of bulk/setup scenarios */
    double warmup;                /* warm-up before the bulk window; <0 = auto */
    long count;                   /* setup: max tunnels, echo: round trips, idle: tunnels */
    int tunnels;                  /* tunnels of the 64-way bulk scenarios */
    int concurrency;              /* setup-32 workers */
    size_t frame;                 /* bulk payload bytes per frame */
    size_t msg_size;              /* echo message size */
    int parallel;                 /* idle: opener threads */
    double hold;                  /* idle: hold seconds (<0 = until SIGTERM/stdin EOF) */
    double timeout;               /* watchdog for the whole run */
    const char *target_host;      /* host written in CONNECT: and bound by the targets */
    int json;
    int verbose;
    int copy;                     /* read bulk data into user space at the sink and the t2c
                                     client (default: discard it in the kernel, MSG_TRUNC) */
} opts_t;

extern opts_t g_opt;

/* ---------- output ---------- */
/* Result line builder: out_begin(); out_str/out_num/out_int ...; out_end(). In
 * --json mode this prints one JSON object per line, else "key=value" pairs. */
void out_begin(const char *scenario);
void out_str(const char *k, const char *v);
void out_num(const char *k, double v);
void out_int(const char *k, long long v);
void out_end(void);
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------- WebSocket client (ws_client.c) ---------- */
enum { WS_CONT = 0, WS_TEXT = 1, WS_BIN = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

typedef struct {
    int fd;
    uint8_t *buf;                 /* receive buffer */
    size_t cap, beg, end;
    /* state of the frame being received */
    int in_payload;
    int fin;                      /* FIN bit of the current data frame */
    int msg_op;                   /* opcode of the data message in progress (TEXT/BIN) */
    uint64_t remaining;           /* payload bytes of the current frame still unread */
    int got_close;
    /* text / control message being assembled */
    uint8_t msg[1024];
    size_t msg_len;
    uint64_t bin_bytes;           /* total binary payload bytes seen */
    int discard;                  /* bulk: skip binary payload in the kernel (MSG_TRUNC),
                                     EV_DATA then has p == NULL */
} wsr_t;

typedef enum {
    EV_DATA = 1,    /* binary payload chunk: *p / *n point into the buffer */
    EV_TEXT,        /* complete text message in r->msg / r->msg_len */
    EV_CLOSE,       /* close frame received */
    EV_EOF,         /* TCP EOF */
    EV_ERR,         /* error (errno set or protocol error) */
    EV_AGAIN,       /* non-blocking socket had nothing more */
} ws_ev_t;

void wsr_init(wsr_t *r, int fd, uint8_t *buf, size_t cap);
ws_ev_t ws_recv(wsr_t *r, const uint8_t **p, size_t *n);

/* Resolves g_opt.host/port once (before any thread starts). 0 ok, -1 error. */
int ws_resolve(void);
/* TCP connect + HTTP upgrade; verifies 101, Sec-WebSocket-Accept and the echoed
 * protocol. Leftover bytes after the response go into r (which must have a buffer).
 * Returns fd >= 0 or -1 (err filled). */
int ws_connect(wsr_t *r, char *err, size_t errlen);
/* Sends CONNECT:host:port| and waits for CONNECTED. 0 ok, -1 error. */
int ws_tunnel_open(wsr_t *r, const char *host, int port, char *err, size_t errlen);
/* ws_connect + ws_tunnel_open; returns fd or -1. */
int ws_open_tunnel(wsr_t *r, int port, char *err, size_t errlen);
/* Sends one masked frame. Uses a thread-local scratch buffer for payloads
 * up to 64 KiB; returns 0 or -1. */
int ws_send(int fd, int op, const void *payload, size_t len);
/* Builds header + masked copy of payload into out (must hold len + 14 bytes).
 * Returns total frame length. */
/* frees the calling thread's ws_send scratch buffer */
void ws_thread_done(void);
size_t ws_build_frame(uint8_t *out, int op, const uint8_t *payload, size_t len);
/* Sends text CLOSE, then reads until EOF/close frame or drain_s seconds, then closes fd. */
void ws_tunnel_close(wsr_t *r, double drain_s);
int write_all(int fd, const void *buf, size_t len);
void mask_bytes(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4]);
void rand_fill(void *p, size_t n);
void set_timeouts(int fd, double seconds);

/* ---------- TCP targets (targets.c) ---------- */
typedef enum { T_SINK, T_SOURCE, T_ECHO, T_IDLE } target_kind_t;

typedef struct {
    target_kind_t kind;
    int lfd, epfd, evfd, armfd;
    int port;
    int armed;                    /* source: writing enabled (target thread only) */
    void *conns;                  /* open connections, tconn_t *[] (target thread only) */
    size_t nconns, capconns;
    pthread_t thr;
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic long accepted, open;
} target_t;

int target_start(target_t *t, target_kind_t kind, const char *bind_host);
/* source: start writing to all (current and future) connections */
void target_arm(target_t *t);
void target_stop(target_t *t);

/* ---------- scenarios (scenarios.c) ---------- */
int sc_bulk(int c2t, int tunnels);
int sc_setup(int concurrency);
int sc_echo(void);
int sc_idle(void);

/* ---------- misc ---------- */
int spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg);
double percentile(double *sorted, size_t n, double q);
int cmp_double(const void *a, const void *b);
extern volatile sig_atomic_t g_signalled;

#endif
