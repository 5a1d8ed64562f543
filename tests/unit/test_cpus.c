/*
 * test_cpus.c - shared/cpus.c: cgroup CPU limits (v2 and v1 files in a
 * scratch tree), /proc/self/cgroup lines, and the count itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../shared/cpus.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/ech3-cpus-XXXXXX");
	return mkdtemp(root) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_parse_max(void **state)
{
	(void)state;
	assert_int_equal(cpus_parse_max("max 100000\n"), 0);
	assert_int_equal(cpus_parse_max("100000 100000\n"), 1);
	assert_int_equal(cpus_parse_max("50000 100000\n"), 1);
	assert_int_equal(cpus_parse_max("150000 100000\n"), 2);
	assert_int_equal(cpus_parse_max("400000 100000"), 4);
	assert_int_equal(cpus_parse_max(""), -1);
	assert_int_equal(cpus_parse_max("max"), -1);
	assert_int_equal(cpus_parse_max("0 100000"), -1);
	assert_int_equal(cpus_parse_max("-5 100000"), -1);
	assert_int_equal(cpus_parse_max("100000 0"), -1);
	assert_int_equal(cpus_parse_max("lots 100000"), -1);
}

static void test_v2_lowest_level_wins(void **state)
{
	(void)state;
	dir("/a");
	dir("/a/b");
	dir("/a/b/c");
	put("/a/cpu.max", "300000 100000\n");	/* 3 */
	put("/a/b/cpu.max", "max 100000\n");	/* none */
	put("/a/b/c/cpu.max", "150000 100000\n");	/* 2 */
	assert_int_equal(cpus_cgroup_limit(root, "/a/b/c", 0), 2);
	assert_int_equal(cpus_cgroup_limit(root, "/a/b", 0), 3);
	put("/a/cpu.max", "100000 100000\n");	/* the parent: 1 */
	assert_int_equal(cpus_cgroup_limit(root, "/a/b/c", 0), 1);
	/* a trailing slash and the root itself */
	assert_int_equal(cpus_cgroup_limit(root, "/a/b/c/", 0), 1);
	assert_int_equal(cpus_cgroup_limit(root, "/", 0), 0);
}

static void test_v2_path_missing_below_the_mount(void **state)
{
	(void)state;
	/* A container that sees the host's path in /proc/self/cgroup but
	 * has its own cgroup mounted at the root. */
	put("/cpu.max", "200000 100000\n");
	assert_int_equal(cpus_cgroup_limit(root, "/kubepods/pod1/ctr", 0), 2);
	put("/cpu.max", "garbage\n");
	assert_int_equal(cpus_cgroup_limit(root, "/kubepods/pod1/ctr", 0), 0);
}

static void test_v1_quota_and_period(void **state)
{
	(void)state;
	dir("/docker");
	put("/docker/cpu.cfs_quota_us", "250000\n");
	put("/docker/cpu.cfs_period_us", "100000\n");
	put("/cpu.cfs_quota_us", "-1\n");
	put("/cpu.cfs_period_us", "100000\n");
	assert_int_equal(cpus_cgroup_limit(root, "/docker", 1), 3);
	assert_int_equal(cpus_cgroup_limit(root, "/", 1), 0);
	/* the v2 file name is not read for v1, nor the other way round */
	assert_int_equal(cpus_cgroup_limit(root, "/docker", 0), 0);
}

static void test_proc_self_cgroup(void **state)
{
	static const char hybrid[] =
		"9:name=systemd:/\n4:memory:/m/x\n3:cpuset:/\n"
		"2:cpu,cpuacct:/docker/abc\n0::/system.slice/ech3.service\n";
	static const char v2[] = "0::/\n";
	char out[128];

	(void)state;
	assert_int_equal(cpus_cgroup_path(hybrid, "", out, sizeof(out)), 0);
	assert_string_equal(out, "/system.slice/ech3.service");
	assert_int_equal(cpus_cgroup_path(hybrid, "cpu", out, sizeof(out)),
			 0);
	assert_string_equal(out, "/docker/abc");
	assert_int_equal(cpus_cgroup_path(hybrid, "cpuacct", out,
					  sizeof(out)), 0);
	assert_int_equal(cpus_cgroup_path(hybrid, "pids", out, sizeof(out)),
			 -1);
	assert_int_equal(cpus_cgroup_path(v2, "", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(cpus_cgroup_path(v2, "cpu", out, sizeof(out)), -1);
	assert_int_equal(cpus_cgroup_path("", "", out, sizeof(out)), -1);
	assert_int_equal(cpus_cgroup_path("0::/a/very/long/path", "", out, 4),
			 -1);
}

static void test_count_within_affinity(void **state)
{
	cpu_set_t set;
	int n = cpu_count();

	(void)state;
	assert_true(n >= 1);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_true(n <= CPU_COUNT(&set));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_max),
		cmocka_unit_test_setup_teardown(test_v2_lowest_level_wins,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_v2_path_missing_below_the_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_quota_and_period,
						setup, teardown),
		cmocka_unit_test(test_proc_self_cgroup),
		cmocka_unit_test(test_count_within_affinity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
