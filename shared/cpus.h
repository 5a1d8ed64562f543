/*
 * cpus.h - how many CPUs this process may really use.
 */
#ifndef ECH3_CPUS_H
#define ECH3_CPUS_H

#include <stddef.h>

/* CPUs this process may use (at least 1): the CPUs in its affinity mask,
 * capped by the CPU bandwidth limit of its cgroup and the cgroups above it
 * (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded
 * up. What `workers = 0` starts: in a container limited to 1.5 CPUs on a
 * 32-core node, 2 rather than 32. */
int cpu_count(void);

/* The parts, for tests. */

/* Parses a cgroup v2 cpu.max ("max 100000", "150000 100000"). Returns the
 * limit in whole CPUs rounded up, 0 for no limit, -1 if malformed. */
int cpus_parse_max(const char *text);

/* The lowest CPU limit on the way from mount/path up to mount: v2 reads
 * cpu.max, v1 (v1 != 0) cpu.cfs_quota_us and cpu.cfs_period_us. Levels
 * that are missing or unlimited do not count. Returns 0 for no limit. */
int cpus_cgroup_limit(const char *mount, const char *path, int v1);

/* The cgroup path of the given hierarchy in /proc/self/cgroup text:
 * controller "" for v2 ("0::/path"), "cpu" for v1 ("N:cpu,cpuacct:/path").
 * Copies it into out and returns 0, or -1 if absent. */
int cpus_cgroup_path(const char *proc_cgroup, const char *controller,
		     char *out, size_t size);

#endif
