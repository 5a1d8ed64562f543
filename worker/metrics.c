/*
 * metrics.c - /metrics in the Prometheus text format (version 0.0.4).
 * Names: ech3_ prefix, base units (bytes, seconds), counters end _total.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../shared/admission.h"
#include "auth.h"

struct out {
	char *buf;
	size_t len, cap;
	int failed;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *nb = realloc(o->buf, o->cap * 2 + (size_t)n);
		if (nb == NULL) {
			o->failed = 1;
			return;
		}
		o->buf = nb;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void head(struct out *o, const char *name, const char *type,
		 const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct out *o, const struct adm *a, enum adm_hist h,
		      const char *name, const char *help)
{
	uint64_t b[ADM_HIST_BUCKETS + 1], count;
	double sum;

	adm_hist_sum(a, h, b, &sum, &count);
	head(o, name, "histogram", help);
	for (int i = 0; i < ADM_HIST_BUCKETS; i++)
		put(o, "%s_bucket{le=\"%g\"} %llu\n", name,
		    adm_hist_bounds[h][i], (unsigned long long)b[i]);
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
	    name, (unsigned long long)b[ADM_HIST_BUCKETS], name, sum, name,
	    (unsigned long long)count);
}

static void counters(struct out *o, const uint64_t *c)
{
	static const struct { const char *outcome; int k; } outcomes[] = {
		{ "ok", ADM_C_TUNNELS_OK },
		{ "refused_auth", ADM_C_REFUSED_AUTH },
		{ "refused_limit", ADM_C_REFUSED_LIMIT },
		{ "refused_rate", ADM_C_REFUSED_RATE },
		{ "refused_egress", ADM_C_REFUSED_EGRESS },
		{ "connect_error", ADM_C_CONNECT_ERRORS },
	};

	head(o, "ech3_connections_admitted_total", "counter",
	     "WebSocket upgrades admitted past the limits.");
	put(o, "ech3_connections_admitted_total %llu\n",
	    (unsigned long long)c[ADM_C_ADMITTED]);
	head(o, "ech3_tunnels_total", "counter",
	     "Tunnels by outcome: ok (connected), refused by reason, or the "
	     "target connect failed.");
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		put(o, "ech3_tunnels_total{outcome=\"%s\"} %llu\n",
		    outcomes[i].outcome,
		    (unsigned long long)c[outcomes[i].k]);
	head(o, "ech3_transmit_bytes_total", "counter",
	     "Payload bytes relayed: up = client to target, down = target "
	     "to client.");
	put(o, "ech3_transmit_bytes_total{direction=\"up\"} %llu\n",
	    (unsigned long long)c[ADM_C_BYTES_UP]);
	put(o, "ech3_transmit_bytes_total{direction=\"down\"} %llu\n",
	    (unsigned long long)c[ADM_C_BYTES_DOWN]);
	head(o, "ech3_auth_failures_total", "counter",
	     "Refused authentications by reason.");
	for (int i = 0; i < AUTH_REASONS; i++)
		put(o, "ech3_auth_failures_total{reason=\"%s\"} %llu\n",
		    auth_reasons[i],
		    (unsigned long long)c[ADM_C_AUTH_REASON0 + i]);
	head(o, "ech3_reloads_total", "counter",
	     "Configuration reloads that took effect.");
	put(o, "ech3_reloads_total %llu\n", (unsigned long long)c[ADM_C_RELOADS]);
	head(o, "ech3_admission_table_full_total", "counter",
	     "Admissions done without per-address accounting because the "
	     "shared table was full.");
	put(o, "ech3_admission_table_full_total %llu\n",
	    (unsigned long long)c[ADM_C_TABLE_FULL]);
}

char *metrics_render(const struct adm *a, size_t *len)
{
	struct out o = { malloc(8192), 0, 8192, 0 };
	uint64_t c[ADM_C__COUNT];

	if (o.buf == NULL)
		return NULL;
	adm_sum(a, c);
	head(&o, "ech3_build_info", "gauge", "Build information.");
	put(&o, "ech3_build_info{version=\"%s\"} 1\n", ECH3_VERSION);
	head(&o, "ech3_tunnels_open", "gauge",
	     "Open WebSocket connections across all workers.");
	put(&o, "ech3_tunnels_open %ld\n", adm_open(a));
	head(&o, "ech3_tunnels_max", "gauge",
	     "The max_conn limit (65536 when unlimited).");
	put(&o, "ech3_tunnels_max %ld\n", adm_max_conn(a) > 0
					      ? adm_max_conn(a)
					      : (long)ADM_MAX_SLOTS);
	head(&o, "ech3_workers_alive", "gauge", "Worker processes alive.");
	put(&o, "ech3_workers_alive %ld\n", adm_workers_alive(a));
	counters(&o, c);
	histogram(&o, a, ADM_H_CONNECT, "ech3_target_connect_seconds",
		  "Time to connect to a tunnel's target.");
	histogram(&o, a, ADM_H_DURATION, "ech3_tunnel_duration_seconds",
		  "Lifetime of tunnels that connected.");
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
