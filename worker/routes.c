/*
 * routes.c - the plain HTTP endpoints.
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/admission.h"
#include "../shared/config.h"
#include "../shared/util.h"
#include "conn.h"
#include "http.h"
#include "metrics.h"
#include "worker.h"

void respond(struct conn *c, const char *status, const char *ctype,
	     const char *extra, const char *body, size_t len)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %s\r\nServer: ech3\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
		     "%sConnection: close\r\n\r\n",
		     status, ctype, len, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	if (c->head_only)
		len = 0;	/* HEAD: the headers say what GET would send */
	if (io_write_all(&c->io, head, (size_t)n, len > 0) == 0 && len > 0)
		(void)io_write_all(&c->io, body, len, 0);
}

static void text(struct conn *c, const char *status, const char *body)
{
	respond(c, status, "text/plain; charset=utf-8", NULL, body, strlen(body));
}

int routes_ready(const struct conn *c)
{
	const struct adm *a = c->w->pol->adm;
	long max = adm_max_conn(a);

	return !worker_draining() && (max == 0 || adm_open(a) < max);
}

static void metrics(struct conn *c)
{
	size_t len = 0;
	char *body = metrics_render(c->w->pol->adm, &len);

	if (body == NULL) {
		text(c, "500 Internal Server Error", "out of memory\n");
		return;
	}
	respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", NULL,
		body, len);
	free(body);
}

/* /metrics on the main listener: only with Authorization: Bearer
 * <metrics_token>; without a token configured it does not exist. */
static void metrics_guarded(struct conn *c, const struct http_request *req)
{
	const char *tok = c->cfg->metrics_token;
	const struct http_header *h = http_header_get(req, "Authorization");

	if (tok[0] == '\0') {
		text(c, "404 Not Found", "not found\n");
		return;
	}
	if (h == NULL || h->value_len < 7 || !strn_ieq(h->value, 7, "Bearer ") ||
	    !ct_equal(h->value + 7, h->value_len - 7, tok, strlen(tok))) {
		respond(c, "401 Unauthorized", "text/plain; charset=utf-8",
			"WWW-Authenticate: Bearer\r\n", "unauthorized\n", 13);
		return;
	}
	metrics(c);
}

static int path_is(const struct http_request *req, const char *path)
{
	size_t n = http_path_len(req);

	return n == strlen(path) && memcmp(req->target, path, n) == 0;
}

void routes_plain(struct conn *c, const struct http_request *req)
{
	int get = (req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
		  (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0);

	c->end = "http";
	c->head_only = req->method_len == 4;
	if (!get) {
		text(c, "404 Not Found", "not found\n");
	} else if (c->kind == LISTEN_METRICS) {
		if (path_is(req, "/metrics"))
			metrics(c);
		else
			text(c, "404 Not Found", "not found\n");
	} else if (path_is(req, "/")) {
		text(c, "200 OK", "ech3 tunnel server OK\n");
	} else if (path_is(req, "/healthz")) {
		if (getppid() == c->w->master)
			text(c, "200 OK", "ok\n");
		else
			text(c, "503 Service Unavailable", "master gone\n");
	} else if (path_is(req, "/readyz")) {
		if (routes_ready(c))
			text(c, "200 OK", "ready\n");
		else
			text(c, "503 Service Unavailable", "not ready\n");
	} else if (path_is(req, "/metrics")) {
		metrics_guarded(c, req);
	} else {
		text(c, "404 Not Found", "not found\n");
	}
}
