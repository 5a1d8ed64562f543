/*
 * cpus.c - the CPUs this process may use: its affinity mask, capped by the
 * CPU bandwidth limit of its cgroup (v2 or v1) and the cgroups above it.
 *
 * sysconf(_SC_NPROCESSORS_ONLN) counts the host's CPUs; in a container
 * limited to one CPU on a large node that would start dozens of workers,
 * each costing memory and none adding throughput. The cgroup files are
 * read where they are mounted by convention (/sys/fs/cgroup, and for v1
 * /sys/fs/cgroup/cpu or cpu,cpuacct); from the cgroup named in
 * /proc/self/cgroup up to the mount's root, so that a container whose
 * cgroup is mounted at the root (with or without a cgroup namespace) is
 * read at the root.
 */
#include "cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define CG_ROOT "/sys/fs/cgroup"

/* Reads a small file into buf. Returns 0, or -1 if it cannot be read. */
static int read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* quota/period rounded up; 0 for no limit; -1 if nonsense. */
static int ratio_up(long long quota, long long period)
{
	long long n;

	if (quota < 0)
		return 0;	/* v1 "-1": unlimited */
	if (quota == 0 || period <= 0)
		return -1;
	n = (quota + period - 1) / period;
	return n > INT_MAX ? INT_MAX : (int)n;
}

int cpus_parse_max(const char *text)
{
	long long quota, period;
	char word[16];

	if (sscanf(text, "%15s %lld", word, &period) != 2)
		return -1;
	if (strcmp(word, "max") == 0)
		return period > 0 ? 0 : -1;
	if (sscanf(word, "%lld", &quota) != 1 || quota <= 0)
		return -1;
	return ratio_up(quota, period);
}

static int level_limit(const char *dir, int v1)
{
	char path[PATH_MAX], buf[64];
	long long quota, period;

	if (!v1) {
		if (snprintf(path, sizeof(path), "%s/cpu.max", dir) >=
			    (int)sizeof(path) ||
		    read_small(path, buf, sizeof(buf)) < 0)
			return 0;
		return cpus_parse_max(buf);
	}
	if (snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir) >=
		    (int)sizeof(path) ||
	    read_small(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%lld", &quota) != 1)
		return 0;
	if (snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir) >=
		    (int)sizeof(path) ||
	    read_small(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%lld", &period) != 1)
		return 0;
	return ratio_up(quota, period);
}

int cpus_cgroup_limit(const char *mount, const char *path, int v1)
{
	char dir[PATH_MAX];
	size_t root_len = strlen(mount);
	int best = 0;

	if (snprintf(dir, sizeof(dir), "%s%s", mount, path) >=
	    (int)sizeof(dir))
		return 0;
	for (;;) {
		size_t len = strlen(dir);
		int n;

		while (len > root_len && dir[len - 1] == '/')
			dir[--len] = '\0';
		n = level_limit(dir, v1);
		if (n > 0 && (best == 0 || n < best))
			best = n;
		if (len <= root_len)
			return best;
		while (len > root_len && dir[len - 1] != '/')
			len--;
		dir[len] = '\0';
	}
}

/* 1 if the comma-separated list has the controller. */
static int has_controller(const char *list, size_t len, const char *want)
{
	size_t pos = 0, n;
	const char *item;

	while (list_next(list, len, &pos, &item, &n))
		if (n == strlen(want) && memcmp(item, want, n) == 0)
			return 1;
	return 0;
}

int cpus_cgroup_path(const char *proc_cgroup, const char *controller,
		     char *out, size_t size)
{
	const char *line = proc_cgroup;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		const char *c1 = memchr(line, ':', end ? (size_t)(end - line)
						       : strlen(line));
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		size_t llen = end ? (size_t)(end - line) : strlen(line);

		if (c2 != NULL && c2 < line + llen) {
			size_t clen = (size_t)(c2 - c1 - 1);
			int match = controller[0] == '\0'
					    ? clen == 0 && strncmp(line, "0:", 2) == 0
					    : has_controller(c1 + 1, clen, controller);
			size_t plen = llen - (size_t)(c2 + 1 - line);

			if (match && plen < size) {
				memcpy(out, c2 + 1, plen);
				out[plen] = '\0';
				return 0;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return -1;
}

static int cgroup_limit(void)
{
	static const char *const v1_mounts[] = {
		CG_ROOT "/cpu", CG_ROOT "/cpu,cpuacct", CG_ROOT "/cpuacct,cpu",
	};
	char text[16384], path[PATH_MAX];
	int n;

	if (read_small("/proc/self/cgroup", text, sizeof(text)) < 0)
		return 0;
	if (strlen(text) == sizeof(text) - 1) {
		char *nl = strrchr(text, '\n');	/* drop a cut-off line */
		if (nl == NULL)
			return 0;
		nl[1] = '\0';
	}
	if (cpus_cgroup_path(text, "", path, sizeof(path)) == 0) {
		n = cpus_cgroup_limit(CG_ROOT, path, 0);
		if (n == 0)
			n = cpus_cgroup_limit(CG_ROOT "/unified", path, 0);
		if (n > 0)
			return n;
	}
	if (cpus_cgroup_path(text, "cpu", path, sizeof(path)) == 0)
		for (size_t i = 0; i < sizeof(v1_mounts) / sizeof(*v1_mounts);
		     i++)
			if ((n = cpus_cgroup_limit(v1_mounts[i], path, 1)) > 0)
				return n;
	return 0;
}

int cpu_count(void)
{
	cpu_set_t set;
	long n = 0;
	int limit;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	limit = cgroup_limit();
	if (limit > 0 && limit < n)
		n = limit;
	return (int)n;
}
