/* ws_client.c — the client side of the tunnel protocol for ech3-bench:
 * TCP connect to the server, HTTP/1.1 upgrade with the token as
 * Sec-WebSocket-Protocol (Sec-WebSocket-Accept checked), masked frame
 * building (word-at-a-time masking, OpenSSL random masks), incremental
 * frame parsing of server frames, and the CONNECT / CONNECTED / CLOSE
 * tunnel commands. */
#include "bench.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static struct sockaddr_storage g_srv;
static socklen_t g_srv_len;

int ws_resolve(void)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(g_opt.host, g_opt.port, &hints, &res);
    if (rc != 0 || !res) {
        logmsg("cannot resolve %s:%s: %s", g_opt.host, g_opt.port, gai_strerror(rc));
        return -1;
    }
    memcpy(&g_srv, res->ai_addr, res->ai_addrlen);
    g_srv_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* ---------- random masks: thread-local pool refilled from OpenSSL ---------- */
static _Thread_local uint8_t rpool[4096];
static _Thread_local size_t rpos = sizeof rpool;

void rand_fill(void *p, size_t n)
{
    uint8_t *d = p;
    while (n > 0) {
        if (rpos == sizeof rpool) {
            if (RAND_bytes(rpool, sizeof rpool) != 1) {
                logmsg("RAND_bytes failed");
                abort();
            }
            rpos = 0;
        }
        size_t k = sizeof rpool - rpos;
        if (k > n)
            k = n;
        memcpy(d, rpool + rpos, k);
        rpos += k;
        d += k;
        n -= k;
    }
}

/* XOR src with the 4-byte key into dst, 8 bytes (and 32 per iteration) at a
 * time. The key is repeated into a 64-bit word in memory order, so this is
 * byte-exact on any endianness. dst may equal src. */
void mask_bytes(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4])
{
    uint8_t kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    uint64_t k;
    memcpy(&k, kb, 8);
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= k; b ^= k; c ^= k; d ^= k;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= k;
        memcpy(dst + i, &a, 8);
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ key[i & 3];
}

size_t ws_build_frame(uint8_t *out, int op, const uint8_t *payload, size_t len)
{
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | (op & 0x0f));
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8)
            out[h++] = (uint8_t)((uint64_t)len >> s);
    }
    uint8_t key[4];
    rand_fill(key, 4);
    memcpy(out + h, key, 4);
    h += 4;
    mask_bytes(out + h, payload, len, key);
    return h + len;
}

void set_timeouts(int fd, double seconds)
{
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    double deadline = 0;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k > 0) {
            p += k;
            len -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            /* non-blocking socket (or SO_SNDTIMEO hit): wait, bounded */
            double t = now_s();
            if (deadline == 0)
                deadline = t + 10.0;
            if (t > deadline)
                return -1;
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 200);
            continue;
        }
        return -1;
    }
    return 0;
}

static _Thread_local uint8_t *scratch;

void ws_thread_done(void)
{
    free(scratch);
    scratch = NULL;
}

int ws_send(int fd, int op, const void *payload, size_t len)
{
    uint8_t *b;
    if (len <= 65536) {
        if (!scratch && !(scratch = malloc(65536 + 14)))
            return -1;
        b = scratch;
    } else if (!(b = malloc(len + 14))) {
        return -1;
    }
    size_t n = ws_build_frame(b, op, payload, len);
    int rc = write_all(fd, b, n);
    if (b != scratch)
        free(b);
    return rc;
}

/* ---------- receiving ---------- */
void wsr_init(wsr_t *r, int fd, uint8_t *buf, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->buf = buf;
    r->cap = cap;
}

/* one read() into the buffer; >0 bytes, 0 EOF, -1 error/EAGAIN */
static ssize_t wsr_fill(wsr_t *r)
{
    if (r->beg == r->end) {
        r->beg = r->end = 0;
    } else if (r->end == r->cap && r->beg > 0) {
        memmove(r->buf, r->buf + r->beg, r->end - r->beg);
        r->end -= r->beg;
        r->beg = 0;
    }
    if (r->end == r->cap) {
        errno = ENOBUFS;
        return -1;
    }
    size_t want = r->cap - r->end;
    if (r->discard && want > 16)
        want = 16; /* just the next frame header: payload is skipped in the kernel */
    for (;;) {
        ssize_t k = read(r->fd, r->buf + r->end, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k > 0)
            r->end += (size_t)k;
        return k;
    }
}

static ws_ev_t fill_ev(wsr_t *r)
{
    ssize_t k = wsr_fill(r);
    if (k > 0)
        return 0;
    if (k == 0)
        return EV_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return EV_AGAIN;
    return EV_ERR;
}

ws_ev_t ws_recv(wsr_t *r, const uint8_t **p, size_t *n)
{
    for (;;) {
        size_t avail = r->end - r->beg;
        if (r->in_payload) {
            if (r->discard && r->msg_op == WS_BIN && avail == 0 && r->remaining > 0) {
                /* TCP MSG_TRUNC: drop the bytes without copying them to user space
                 * (the NULL buffer is never touched; TSan reports it as a race) */
                size_t want = r->remaining > (8u << 20) ? (8u << 20) : (size_t)r->remaining;
                ssize_t k = recv(r->fd, NULL, want, MSG_TRUNC);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k == 0)
                    return EV_EOF;
                if (k < 0)
                    return (errno == EAGAIN || errno == EWOULDBLOCK) ? EV_AGAIN : EV_ERR;
                r->remaining -= (uint64_t)k;
                r->bin_bytes += (uint64_t)k;
                if (r->remaining == 0) {
                    r->in_payload = 0;
                    if (r->fin)
                        r->msg_op = 0;
                }
                *p = NULL;
                *n = (size_t)k;
                return EV_DATA;
            }
            if (r->remaining > 0 && avail == 0) {
                ws_ev_t e = fill_ev(r);
                if (e)
                    return e;
                continue;
            }
            size_t k = avail;
            if ((uint64_t)k > r->remaining)
                k = (size_t)r->remaining;
            const uint8_t *src = r->buf + r->beg;
            r->beg += k;
            r->remaining -= k;
            if (r->remaining == 0)
                r->in_payload = 0;
            if (r->msg_op == WS_BIN) {
                r->bin_bytes += k;
                if (r->remaining == 0 && r->fin)
                    r->msg_op = 0;
                if (k == 0)
                    continue;
                *p = src;
                *n = k;
                return EV_DATA;
            }
            /* text: assemble (truncated to the msg buffer) */
            size_t room = sizeof r->msg - r->msg_len;
            memcpy(r->msg + r->msg_len, src, k < room ? k : room);
            r->msg_len += k < room ? k : room;
            if (r->remaining == 0 && r->fin) {
                r->msg_op = 0;
                return EV_TEXT;
            }
            continue;
        }
        /* frame header */
        if (avail < 2) {
            ws_ev_t e = fill_ev(r);
            if (e)
                return e;
            continue;
        }
        const uint8_t *h = r->buf + r->beg;
        int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2 + (masked ? 4 : 0) + (len == 126 ? 2 : len == 127 ? 8 : 0);
        if (avail < hl) {
            ws_ev_t e = fill_ev(r);
            if (e)
                return e;
            continue;
        }
        if (len == 126)
            len = ((uint64_t)h[2] << 8) | h[3];
        else if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
        }
        if (masked || (h[0] & 0x70)) {
            errno = EPROTO;
            return EV_ERR; /* server frames must not be masked; no extensions negotiated */
        }
        if (op >= 8) {
            if (!fin || len > 125) {
                errno = EPROTO;
                return EV_ERR;
            }
            if (avail < hl + len) {
                ws_ev_t e = fill_ev(r);
                if (e)
                    return e;
                continue;
            }
            const uint8_t *pl = h + hl;
            r->beg += hl + (size_t)len;
            if (op == WS_PING) {
                uint8_t tmp[125];
                memcpy(tmp, pl, (size_t)len);
                if (ws_send(r->fd, WS_PONG, tmp, (size_t)len) < 0)
                    return EV_ERR;
                continue;
            }
            if (op == WS_CLOSE) {
                r->got_close = 1;
                return EV_CLOSE;
            }
            continue; /* pong or unknown control */
        }
        r->beg += hl;
        if (op == WS_TEXT || op == WS_BIN) {
            if (r->msg_op) {
                errno = EPROTO; /* new message inside a fragmented one */
                return EV_ERR;
            }
            r->msg_op = op;
            r->msg_len = 0;
        } else if (op != WS_CONT || !r->msg_op) {
            errno = EPROTO;
            return EV_ERR;
        }
        r->fin = fin;
        r->remaining = len;
        r->in_payload = 1;
        if (len == 0) {
            r->in_payload = 0;
            if (fin) {
                int mop = r->msg_op;
                r->msg_op = 0;
                if (mop == WS_TEXT)
                    return EV_TEXT;
            }
        }
    }
}

/* ---------- handshake ---------- */
static void b64(const uint8_t *in, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, n);
}

/* finds header `name` (case-insensitive) in the CRLF-separated block; copies its trimmed value */
static int find_header(const char *hdrs, const char *name, char *val, size_t vlen)
{
    size_t nl = strlen(name);
    const char *line = strstr(hdrs, "\r\n");
    while (line) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol || eol == line)
            break;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            size_t k = (size_t)(e - v);
            if (k >= vlen)
                k = vlen - 1;
            memcpy(val, v, k);
            val[k] = 0;
            return 1;
        }
        line = eol;
    }
    return 0;
}

int ws_connect(wsr_t *r, char *err, size_t errlen)
{
    int fd = socket(g_srv.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeouts(fd, 5.0);
    if (connect(fd, (struct sockaddr *)&g_srv, g_srv_len) < 0) {
        snprintf(err, errlen, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    uint8_t raw[16];
    char key[32], acc_exp[64], acc[128], proto[512];
    rand_fill(raw, sizeof raw);
    b64(raw, 16, key);
    char cat[128];
    int cl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    uint8_t dig[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, (size_t)cl, dig);
    b64(dig, SHA_DIGEST_LENGTH, acc_exp);

    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%s\r\n"
                     "User-Agent: Go-http-client/1.1\r\n"
                     "Connection: Upgrade\r\n"
                     "Upgrade: websocket\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s%s%s"
                     "\r\n",
                     g_opt.path, g_opt.host, g_opt.port, key,
                     g_opt.token ? "Sec-WebSocket-Protocol: " : "", g_opt.token ? g_opt.token : "",
                     g_opt.token ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof req || write_all(fd, req, (size_t)n) < 0) {
        snprintf(err, errlen, "send upgrade: %s", strerror(errno));
        close(fd);
        return -1;
    }
    wsr_init(r, fd, r->buf, r->cap);
    char *end = NULL;
    while (!end) {
        if (r->end >= r->cap - 1) {
            snprintf(err, errlen, "upgrade response too large");
            close(fd);
            return -1;
        }
        ssize_t k = read(fd, r->buf + r->end, r->cap - 1 - r->end);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            snprintf(err, errlen, "upgrade response: %s",
                     k == 0 ? "EOF" : errno == EAGAIN ? "timed out (5 s)" : strerror(errno));
            close(fd);
            return -1;
        }
        r->end += (size_t)k;
        r->buf[r->end] = 0;
        end = strstr((char *)r->buf, "\r\n\r\n");
    }
    size_t hlen = (size_t)(end - (char *)r->buf) + 4;
    char save = (char)r->buf[hlen - 2];
    r->buf[hlen - 2] = 0; /* keep the last CRLF for find_header */
    const char *resp = (const char *)r->buf;
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*c %d", &status) != 1 || status != 101) {
        const char *eol = strstr(resp, "\r\n");
        snprintf(err, errlen, "upgrade refused: %.*s", eol ? (int)(eol - resp) : 60, resp);
        close(fd);
        return -1;
    }
    if (!find_header(resp, "Sec-WebSocket-Accept", acc, sizeof acc) || strcmp(acc, acc_exp) != 0) {
        snprintf(err, errlen, "bad or missing Sec-WebSocket-Accept");
        close(fd);
        return -1;
    }
    if (g_opt.token) {
        if (!find_header(resp, "Sec-WebSocket-Protocol", proto, sizeof proto) ||
            strcmp(proto, g_opt.token) != 0) {
            snprintf(err, errlen, "server did not echo the token as Sec-WebSocket-Protocol");
            close(fd);
            return -1;
        }
    }
    r->buf[hlen - 2] = (uint8_t)save;
    r->beg = hlen;
    if (r->beg == r->end)
        r->beg = r->end = 0;
    return fd;
}

int ws_tunnel_open(wsr_t *r, const char *host, int port, char *err, size_t errlen)
{
    char cmd[300];
    int n = strchr(host, ':') ? snprintf(cmd, sizeof cmd, "CONNECT:[%s]:%d|", host, port)
                              : snprintf(cmd, sizeof cmd, "CONNECT:%s:%d|", host, port);
    if (ws_send(r->fd, WS_TEXT, cmd, (size_t)n) < 0) {
        snprintf(err, errlen, "send CONNECT: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        const uint8_t *p;
        size_t k;
        ws_ev_t e = ws_recv(r, &p, &k);
        switch (e) {
        case EV_TEXT:
            if (r->msg_len == 9 && memcmp(r->msg, "CONNECTED", 9) == 0)
                return 0;
            snprintf(err, errlen, "unexpected reply to CONNECT: %.*s", (int)(r->msg_len > 200 ? 200 : r->msg_len),
                     (const char *)r->msg);
            return -1;
        case EV_DATA:
            continue; /* binary before CONNECTED: ignore */
        case EV_CLOSE:
            snprintf(err, errlen, "close frame before CONNECTED");
            return -1;
        case EV_EOF:
            snprintf(err, errlen, "EOF before CONNECTED");
            return -1;
        default:
            snprintf(err, errlen, "waiting for CONNECTED: %s",
                     e == EV_AGAIN ? "timed out (5 s)" : strerror(errno));
            return -1;
        }
    }
}

int ws_open_tunnel(wsr_t *r, int port, char *err, size_t errlen)
{
    int fd = ws_connect(r, err, errlen);
    if (fd < 0)
        return -1;
    if (ws_tunnel_open(r, g_opt.target_host, port, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void ws_tunnel_close(wsr_t *r, double drain_s)
{
    if (r->fd < 0)
        return;
    int ok = ws_send(r->fd, WS_TEXT, "CLOSE", 5) == 0;
    if (ok && drain_s > 0) {
        int fl = fcntl(r->fd, F_GETFL);
        if (fl & O_NONBLOCK)
            fcntl(r->fd, F_SETFL, fl & ~O_NONBLOCK);
        set_timeouts(r->fd, drain_s < 0.2 ? drain_s : 0.2);
        double deadline = now_s() + drain_s;
        while (now_s() < deadline) {
            const uint8_t *p;
            size_t k;
            ws_ev_t e = ws_recv(r, &p, &k);
            if (e == EV_DATA || e == EV_TEXT)
                continue;
            if (e == EV_AGAIN)
                continue; /* SO_RCVTIMEO slice */
            break;
        }
    }
    close(r->fd);
    r->fd = -1;
}
