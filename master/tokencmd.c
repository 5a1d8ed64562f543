/*
 * tokencmd.c - `ech3 token`: mints a JWT with the configured HMAC secret
 * (jwt.secret / jwt.secret_file, from the same file, env and --set as the
 * server) or with a private key file for RS/ES, and prints it to stdout.
 */
#include "tokencmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../shared/jwt.h"
#include "options.h"
#include "policy.h"

#define MAX_DEST JWT_DEST_MAX

static void usage(FILE *out)
{
	fputs(
"usage: ech3 token [options]\n"
"\n"
"Mints a JWT that this server accepts and prints it on stdout.\n"
"\n"
"  -c, --config FILE   the server's configuration (for jwt.* settings)\n"
"      --set KEY=VAL   override a setting, as for the server\n"
"      --sub NAME      subject: the user, shown in logs (required)\n"
"      --ttl SECONDS   lifetime (default 86400; 0: no exp claim)\n"
"      --aud AUD       audience (default: jwt.audience if set)\n"
"      --iss ISS       issuer (default: jwt.issuer if set)\n"
"      --dest H:P      limit destinations (repeatable): host, *.domain or *;\n"
"                      port, lo-hi or *; e.g. *.example.com:443\n"
"      --kid KID       key id to put in the header\n"
"      --key FILE      private key PEM for RS256/ES256 (default: the HMAC\n"
"                      secret jwt.secret or jwt.secret_file)\n"
"      --alg ALG       algorithm (default HS256, or from the key)\n", out);
}

struct tokopts {
	struct options srv;
	struct jwt_mint_req req;
	const char *dest[MAX_DEST];
};

static int parse(struct tokopts *t, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 'S' },
		{ "sub", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "aud", required_argument, NULL, 'a' },
		{ "iss", required_argument, NULL, 'i' },
		{ "dest", required_argument, NULL, 'd' },
		{ "kid", required_argument, NULL, 'k' },
		{ "key", required_argument, NULL, 'K' },
		{ "alg", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;

	t->req.ttl = 86400;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': t->srv.file = optarg; break;
		case 'S':
			if (options_add_set(&t->srv, optarg) < 0)
				return -1;
			break;
		case 's': t->req.sub = optarg; break;
		case 't':
			t->req.ttl = strtol(optarg, &end, 10);
			if (*end != '\0' || t->req.ttl < 0) {
				fprintf(stderr, "ech3 token: --ttl %s: not a "
					"number of seconds\n", optarg);
				return -1;
			}
			break;
		case 'a': t->req.aud = optarg; break;
		case 'i': t->req.iss = optarg; break;
		case 'd':
			if (t->req.ndest == MAX_DEST) {
				fprintf(stderr, "ech3 token: at most %d --dest\n",
					MAX_DEST);
				return -1;
			}
			t->dest[t->req.ndest++] = optarg;
			break;
		case 'k': t->req.kid = optarg; break;
		case 'K': t->req.key_file = optarg; break;
		case 'A': t->req.alg = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc || t->req.sub == NULL || t->req.sub[0] == '\0') {
		fprintf(stderr, "ech3 token: --sub is required\n");
		usage(stderr);
		return -1;
	}
	t->req.dest = t->dest;
	return 0;
}

int tokencmd_main(int argc, char **argv)
{
	struct tokopts t;
	struct config *cfg;
	struct worker_policy pol;
	char err[CONFIG_ERR_MAX], *tok;
	int rc = 1;

	memset(&t, 0, sizeof(t));
	if (parse(&t, argc, argv) < 0)
		goto out;
	cfg = options_build_config(&t.srv, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "ech3 token: configuration error: %s\n", err);
		goto out;
	}
	memset(&pol, 0, sizeof(pol));
	if (policy_build(cfg, NULL, 0, &pol, err, sizeof(err)) < 0) {
		fprintf(stderr, "ech3 token: %s\n", err);
		config_free(cfg);
		goto out;
	}
	if (t.req.aud == NULL && cfg->jwt_audience[0] != '\0')
		t.req.aud = cfg->jwt_audience;
	if (t.req.iss == NULL && cfg->jwt_issuer[0] != '\0')
		t.req.iss = cfg->jwt_issuer;
	if (pol.jwt == NULL && t.req.key_file == NULL) {
		fprintf(stderr, "ech3 token: no key: set jwt.secret or "
			"jwt.secret_file (ECH3_JWT_SECRET...), or give --key\n");
	} else if ((tok = jwt_mint(pol.jwt, &t.req, (long)time(NULL), err,
				   sizeof(err))) == NULL) {
		fprintf(stderr, "ech3 token: %s\n", err);
	} else {
		printf("%s\n", tok);
		free(tok);
		rc = 0;
	}
	policy_free(&pol);
	config_free(cfg);
out:
	options_free(&t.srv);
	return rc;
}
