// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * setup_floor.c - hookbench's C reference for the set-up and tear-down floors: the same loops
 * as the Rust floors of the spawner (workloads/src/taskpool.rs task_floor, workloads/src/
 * cgroupfs.rs mkdir_floor), written as a kernel developer would write them, so every run (and
 * a test) can show how far hookbench's own figures are from plain C.
 *
 *   setup_floor tasks CGROUP_DIR T
 *       opens CGROUP_DIR/cgroup.procs, then times T times fork() + write(pid) to it (the child
 *       is born in this process's cgroup and migrated), then times kill(SIGKILL) of every
 *       child followed by waitpid() of every one. Each child does what hookbench's idle tasks
 *       do: prctl(PR_SET_PDEATHSIG, SIGKILL), exit if its parent already died, prctl(PR_SET_NAME,
 *       "hookbench-idle"), pause() until killed.
 *   setup_floor cgroups PARENT C
 *       makes PARENT/hookbench-<pid>-c<ns>, times C mkdirat() of "0".."C-1" in it (names built
 *       beforehand, relative to a directory fd), then C unlinkat(AT_REMOVEDIR) in reverse, and
 *       removes the directory.
 *
 * Prints one line on stdout:  HOOKBENCH-C-REPORT setup_s=<seconds> teardown_s=<seconds>
 * Exit status: 0 success, 1 a system call failed (message on stderr), 2 bad arguments.
 * Everything it made is removed on every path, errors included.
 *
 * Build: cc -O2 -Wall -Wextra -o setup_floor setup_floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 1000000L

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > MAX_COUNT)
		return -1;
	return v;
}

/* What every idle child does; never returns. */
static void idle_child(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "hookbench-idle", 0, 0, 0);
	for (;;)
		pause();
}

/* Decimal digits of pid into buf (no stdio in the timed loop); returns the length. */
static size_t fmt_pid(pid_t pid, char buf[16])
{
	char tmp[16];
	size_t n = 0, i;
	unsigned int v = (unsigned int)pid;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static void kill_and_reap(const pid_t *pids, long n)
{
	long i;

	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < n; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
}

static int tasks(const char *cgroup, long count)
{
	char path[4096], buf[16];
	pid_t *pids, parent = getpid();
	double t0, t1, t2;
	long i;
	int fd;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup) >= (int)sizeof(path)) {
		fprintf(stderr, "setup_floor: %s: path too long\n", cgroup);
		return 2;
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "setup_floor: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	pids = calloc((size_t)count, sizeof(*pids));
	if (!pids) {
		fprintf(stderr, "setup_floor: out of memory for %ld pids\n", count);
		close(fd);
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < count; i++) {
		pid_t pid = fork();

		if (pid == 0)
			idle_child(parent);
		if (pid < 0) {
			fprintf(stderr, "setup_floor: fork %ld of %ld: %s\n", i, count, strerror(errno));
			kill_and_reap(pids, i);
			return 1;
		}
		pids[i] = pid;
		if (write(fd, buf, fmt_pid(pid, buf)) < 0) {
			fprintf(stderr, "setup_floor: write %d to %s: %s\n", pid, path, strerror(errno));
			kill_and_reap(pids, i + 1);
			return 1;
		}
	}
	t1 = now_s();
	kill_and_reap(pids, count);
	t2 = now_s();
	close(fd);
	free(pids);
	printf("HOOKBENCH-C-REPORT setup_s=%.9f teardown_s=%.9f\n", t1 - t0, t2 - t1);
	return 0;
}

static int cgroups(const char *parent, long count)
{
	char dir[4096];
	char (*names)[24];
	struct timespec ts;
	double t0, t1, t2;
	long i, made = 0;
	int fd, rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (snprintf(dir, sizeof(dir), "%s/hookbench-%d-c%lld%09ld", parent, (int)getpid(), (long long)ts.tv_sec,
		     ts.tv_nsec) >= (int)sizeof(dir)) {
		fprintf(stderr, "setup_floor: %s: path too long\n", parent);
		return 2;
	}
	names = calloc((size_t)count, sizeof(*names));
	if (!names) {
		fprintf(stderr, "setup_floor: out of memory for %ld names\n", count);
		return 1;
	}
	for (i = 0; i < count; i++)
		snprintf(names[i], sizeof(names[i]), "%ld", i);
	if (mkdir(dir, 0755)) {
		fprintf(stderr, "setup_floor: mkdir %s: %s\n", dir, strerror(errno));
		free(names);
		return 1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "setup_floor: open %s: %s\n", dir, strerror(errno));
		rmdir(dir);
		free(names);
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < count; i++) {
		if (mkdirat(fd, names[i], 0755)) {
			fprintf(stderr, "setup_floor: mkdir %s/%s: %s\n", dir, names[i], strerror(errno));
			rc = 1;
			break;
		}
		made++;
	}
	t1 = now_s();
	for (i = made - 1; i >= 0; i--) {
		if (unlinkat(fd, names[i], AT_REMOVEDIR) && !rc) {
			fprintf(stderr, "setup_floor: rmdir %s/%s: %s\n", dir, names[i], strerror(errno));
			rc = 1;
		}
	}
	t2 = now_s();
	close(fd);
	if (rmdir(dir) && !rc) {
		fprintf(stderr, "setup_floor: rmdir %s: %s\n", dir, strerror(errno));
		rc = 1;
	}
	free(names);
	if (!rc)
		printf("HOOKBENCH-C-REPORT setup_s=%.9f teardown_s=%.9f\n", t1 - t0, t2 - t1);
	return rc;
}

int main(int argc, char **argv)
{
	long count;

	if (argc < 4 || (count = parse_count(argv[3])) < 0) {
		fprintf(stderr, "usage: setup_floor tasks CGROUP_DIR T | setup_floor cgroups PARENT C  (1 <= T, C <= %ld)\n",
			MAX_COUNT);
		return 2;
	}
	if (!strcmp(argv[1], "tasks"))
		return tasks(argv[2], count);
	if (!strcmp(argv[1], "cgroups"))
		return cgroups(argv[2], count);
	fprintf(stderr, "setup_floor: unknown mode '%s': expected tasks or cgroups\n", argv[1]);
	return 2;
}
