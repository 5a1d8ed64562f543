/* ech3-bench.c — entry point of the ech3 load generator: option and URL
 * parsing, result output (text or one JSON object per line), the watchdog
 * that bounds every run, small shared helpers, and scenario dispatch.
 * See tests/bench/README.md for usage. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

opts_t g_opt;
volatile sig_atomic_t g_signalled;

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_signalled)
        ;
}

int spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 512 * 1024);
    int rc = pthread_create(t, &a, fn, arg);
    pthread_attr_destroy(&a);
    if (rc)
        errno = rc;
    return rc;
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array */
double percentile(double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

/* ---------- output ---------- */
static char line[4096];
static size_t llen;
static int nfields;

static void app(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void app(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + llen, sizeof line - llen, fmt, ap);
    va_end(ap);
    if (n > 0)
        llen += (size_t)n < sizeof line - llen ? (size_t)n : sizeof line - llen - 1;
}

void out_begin(const char *scenario)
{
    llen = 0;
    nfields = 0;
    if (g_opt.json)
        app("{\"scenario\":\"%s\",\"url\":\"%s\"", scenario, g_opt.url);
    else
        app("%s:", scenario);
}

static void key(const char *k)
{
    if (g_opt.json)
        app(",\"%s\":", k);
    else
        app(" %s=", k);
    nfields++;
}

void out_str(const char *k, const char *v)
{
    key(k);
    app(g_opt.json ? "\"%s\"" : "%s", v);
}

void out_num(const char *k, double v)
{
    key(k);
    app("%.3f", v);
}

void out_int(const char *k, long long v)
{
    key(k);
    app("%lld", v);
}

void out_end(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out_num("client_cpu_s", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
    if (g_opt.json)
        app("}");
    fprintf(stdout, "%s\n", line);
    fflush(stdout);
}

void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ech3-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void vlog(const char *fmt, ...)
{
    if (!g_opt.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ech3-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---------- watchdog ---------- */
static double g_watch_s;

static void *watchdog(void *arg)
{
    (void)arg;
    sleep_s(g_watch_s);
    fprintf(stderr, "ech3-bench: watchdog: scenario %s did not finish within %.0f s, aborting\n",
            g_opt.scenario, g_watch_s);
    fflush(stdout);
    _exit(3);
}

static void on_signal(int sig)
{
    (void)sig;
    g_signalled = 1;
}

/* ---------- options ---------- */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: ech3-bench --url ws://HOST:PORT/ [--token T] --scenario NAME [options] [N]\n"
            "scenarios:\n"
            "  c2t        1 tunnel, bulk client->target, MB/s measured at the sink\n"
            "  t2c        1 tunnel, bulk target->client, MB/s measured at the client\n"
            "  c2t64      --tunnels (64) tunnels, aggregate client->target\n"
            "  t2c64      --tunnels (64) tunnels, aggregate target->client\n"
            "  setup-seq  tunnel setup (upgrade, CONNECT, CONNECTED, CLOSE), one at a time\n"
            "  setup-32   the same with --concurrency (32) workers\n"
            "  echo       --size (64) byte round trips through one tunnel, --count (10000)\n"
            "  idle N     open N tunnels to an idle target, print a ready line, hold them until\n"
            "             SIGTERM/SIGINT, stdin EOF or --hold S seconds\n"
            "options:\n"
            "  --url URL          ws://host:port/path of the server (required)\n"
            "  --token T          Sec-WebSocket-Protocol token (default: $TOKEN)\n"
            "  --seconds S        measurement window of bulk and setup scenarios (3)\n"
            "  --warmup S         bulk warm-up before the window (auto: 20%% of S, 0.3-1 s)\n"
            "  --count N          setup: max tunnels (20000); echo: round trips (10000); idle: tunnels (1000)\n"
            "  --tunnels N        tunnels of c2t64/t2c64 (64)\n"
            "  --concurrency N    workers of setup-32 (32)\n"
            "  --frame BYTES      payload per bulk frame, K/M suffix ok (256K)\n"
            "  --size BYTES       echo message size (64)\n"
            "  --parallel N       idle: concurrent openers (16)\n"
            "  --hold S           idle: hold S seconds (default: until signal / stdin EOF, max 1 h)\n"
            "  --timeout S        watchdog for the run, exit 3 when hit (120; idle adds the hold)\n"
            "  --target-host A    numeric address for the targets and CONNECT (127.0.0.1)\n"
            "  --copy             bulk: read payload into user space at the sink and the t2c\n"
            "                     client (default: discard it in the kernel with MSG_TRUNC, so\n"
            "                     the generator costs the least CPU)\n"
            "  --json             one JSON object per result line\n"
            "  --verbose          more diagnostics on stderr\n"
            "Exit: 0 ok, 1 result with errors, 2 setup failure, 3 watchdog.\n");
}

static size_t parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    if (*e == 'k' || *e == 'K')
        v *= 1024;
    else if (*e == 'm' || *e == 'M')
        v *= 1024 * 1024;
    return v < 1 ? 0 : (size_t)v;
}

static int parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "ws://", 5) == 0)
        p += 5;
    else if (strncmp(p, "wss://", 6) == 0) {
        logmsg("wss:// is not supported (plain ws:// only)");
        return -1;
    } else if (strstr(p, "://")) {
        logmsg("unsupported URL scheme: %s", url);
        return -1;
    }
    const char *slash = strchr(p, '/');
    const char *hp_end = slash ? slash : p + strlen(p);
    snprintf(g_opt.path, sizeof g_opt.path, "%s", slash ? slash : "/");
    const char *colon;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hp_end - p));
        if (!rb)
            return -1;
        snprintf(g_opt.host, sizeof g_opt.host, "%.*s", (int)(rb - p - 1), p + 1);
        colon = rb + 1 < hp_end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(hp_end - p));
        snprintf(g_opt.host, sizeof g_opt.host, "%.*s", (int)((colon ? colon : hp_end) - p), p);
    }
    if (colon)
        snprintf(g_opt.port, sizeof g_opt.port, "%.*s", (int)(hp_end - colon - 1), colon + 1);
    else
        snprintf(g_opt.port, sizeof g_opt.port, "80");
    return g_opt.host[0] ? 0 : -1;
}

int main(int argc, char **argv)
{
    g_opt.seconds = 3;
    g_opt.warmup = -1;
    g_opt.tunnels = 64;
    g_opt.concurrency = 32;
    g_opt.frame = 256 * 1024;
    g_opt.msg_size = 64;
    g_opt.parallel = 16;
    g_opt.hold = -1;
    g_opt.timeout = -1;
    g_opt.target_host = "127.0.0.1";
    g_opt.token = getenv("TOKEN");

    static const struct option lo[] = {
        {"url", required_argument, 0, 'u'},      {"token", required_argument, 0, 't'},
        {"scenario", required_argument, 0, 's'}, {"seconds", required_argument, 0, 'S'},
        {"warmup", required_argument, 0, 'W'},   {"count", required_argument, 0, 'n'},
        {"tunnels", required_argument, 0, 'T'},  {"concurrency", required_argument, 0, 'c'},
        {"frame", required_argument, 0, 'f'},    {"size", required_argument, 0, 'z'},
        {"parallel", required_argument, 0, 'p'}, {"hold", required_argument, 0, 'H'},
        {"timeout", required_argument, 0, 'O'},  {"target-host", required_argument, 0, 'A'},
        {"json", no_argument, 0, 'j'},           {"verbose", no_argument, 0, 'v'},
        {"copy", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "u:t:s:S:n:jvh", lo, NULL)) != -1) {
        switch (c) {
        case 'u': g_opt.url = optarg; break;
        case 't': g_opt.token = optarg; break;
        case 's': g_opt.scenario = optarg; break;
        case 'S': g_opt.seconds = atof(optarg); break;
        case 'W': g_opt.warmup = atof(optarg); break;
        case 'n': g_opt.count = atol(optarg); break;
        case 'T': g_opt.tunnels = atoi(optarg); break;
        case 'c': g_opt.concurrency = atoi(optarg); break;
        case 'f': g_opt.frame = parse_size(optarg); break;
        case 'z': g_opt.msg_size = parse_size(optarg); break;
        case 'p': g_opt.parallel = atoi(optarg); break;
        case 'H': g_opt.hold = atof(optarg); break;
        case 'O': g_opt.timeout = atof(optarg); break;
        case 'A': g_opt.target_host = optarg; break;
        case 'j': g_opt.json = 1; break;
        case 'v': g_opt.verbose = 1; break;
        case 'C': g_opt.copy = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc && !g_opt.scenario)
        g_opt.scenario = argv[optind++];
    if (optind < argc)
        g_opt.count = atol(argv[optind++]); /* "idle N" */
    if (optind < argc || !g_opt.url || !g_opt.scenario) {
        usage(stderr);
        return 2;
    }
    if (g_opt.token && !g_opt.token[0])
        g_opt.token = NULL;
    if (parse_url(g_opt.url) < 0) {
        logmsg("bad --url %s", g_opt.url);
        return 2;
    }
    if (g_opt.seconds <= 0 || g_opt.frame == 0 || g_opt.frame > (64u << 20) || g_opt.msg_size == 0 ||
        g_opt.msg_size > (1u << 20) || g_opt.tunnels < 1 || g_opt.tunnels > 4096 || g_opt.concurrency < 1 ||
        g_opt.concurrency > 1024 || g_opt.count < 0) {
        logmsg("option out of range");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (ws_resolve() < 0)
        return 2;

    const char *s = g_opt.scenario;
    int is_idle = strcmp(s, "idle") == 0;
    double wd = g_opt.timeout > 0 ? g_opt.timeout : 120;
    if (is_idle) {
        wd += g_opt.hold >= 0 ? g_opt.hold : 3600;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    g_watch_s = wd;
    pthread_t wt;
    if (spawn_thread(&wt, watchdog, NULL) != 0) {
        logmsg("watchdog thread: %s", strerror(errno));
        return 2;
    }
    pthread_detach(wt);

    if (!strcmp(s, "c2t"))
        return sc_bulk(1, 1);
    if (!strcmp(s, "t2c"))
        return sc_bulk(0, 1);
    if (!strcmp(s, "c2t64"))
        return sc_bulk(1, g_opt.tunnels);
    if (!strcmp(s, "t2c64"))
        return sc_bulk(0, g_opt.tunnels);
    if (!strcmp(s, "setup-seq"))
        return sc_setup(1);
    if (!strcmp(s, "setup-32"))
        return sc_setup(g_opt.concurrency);
    if (!strcmp(s, "echo"))
        return sc_echo();
    if (is_idle)
        return sc_idle();
    logmsg("unknown scenario %s", s);
    usage(stderr);
    return 2;
}
