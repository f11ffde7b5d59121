// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* attach_floor.c: the floor of a cgroup-bpf attach and detach, in plain C with raw bpf(2).
 *
 * hookbench's attach worker (workloads/src/attach_worker.rs) times bpf_program__attach_cgroup
 * (libbpf: an allocation + BPF_LINK_CREATE) and BPF_LINK_DETACH at the top of a cgroup subtree
 * with K descendants; this program times the same two syscalls with nothing around them, so the
 * harness can show that its figures are the kernel's (within 1.25x) and not its own.
 *
 * It loads one two-instruction program (r0 = 1; exit) of BPF_PROG_TYPE_CGROUP_SOCK_ADDR for
 * BPF_CGROUP_INET4_GETSOCKNAME (or BPF_PROG_TYPE_CGROUP_SOCK for BPF_CGROUP_INET_SOCK_CREATE),
 * keeps one link of it in KEEPER (so the cgroup_bpf_enabled_key static key stays on and its
 * flips are not part of any figure, as the worker does), then WARMUP untimed and SAMPLES timed
 * rounds of: BPF_LINK_CREATE at TOP (timed), BPF_LINK_DETACH (timed), close (untimed). Each
 * attach runs __cgroup_bpf_attach -> update_effective_progs over TOP and its K descendants
 * (kernel/bpf/cgroup.c), each detach cgroup_bpf_detach -> the same recomputation.
 *
 * Times are CLOCK_MONOTONIC_RAW intervals less the median cost of a clock-read pair. The
 * result is one line on stdout in hookbench's worker protocol:
 *   HOOKBENCH-REPORT {"report":{"pid":..,"prog_id":..,"clock_overhead_ns":..,"cpu":..,
 *                    "cpu_migrations":..,"attach_ns":[..],"detach_ns":[..]}}
 * or HOOKBENCH-REPORT {"refused":"<why>"} when something was refused. Every fd (program and
 * links) dies with the process, so nothing stays attached however it ends.
 *
 * Usage: attach_floor getsockname4|sock_create TOP KEEPER SAMPLES WARMUP CPU [REQUEST]
 *   CPU = -1 leaves the affinity alone; REQUEST (the worker protocol's request slot) is ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 1000000L
#define CLOCK_PAIRS 1001

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* Prints the refusal line (the message JSON-escaped) and exits 0: the harness reads the line. */
static void refuse(const char *what, const char *arg, int err)
{
	char msg[1024];
	const char *p;

	snprintf(msg, sizeof(msg), "attach_floor: %s%s%s%s%s", what, arg ? " " : "", arg ? arg : "",
		 err ? ": " : "", err ? strerror(err) : "");
	fputs("HOOKBENCH-REPORT {\"refused\":\"", stdout);
	for (p = msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		if ((unsigned char)*p >= 0x20)
			putchar(*p);
	}
	fputs("\"}\n", stdout);
	exit(0);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median cost of a back-to-back clock-read pair, ns. */
static uint64_t clock_overhead_ns(void)
{
	static uint64_t d[CLOCK_PAIRS];
	int i;

	for (i = 0; i < CLOCK_PAIRS; i++) {
		uint64_t t0 = now_ns();
		uint64_t t1 = now_ns();

		d[i] = t1 - t0;
	}
	qsort(d, CLOCK_PAIRS, sizeof(d[0]), cmp_u64);
	return d[CLOCK_PAIRS / 2];
}

static int load_prog(enum bpf_prog_type type, enum bpf_attach_type attach)
{
	struct bpf_insn insns[2];
	static char log[4096];
	union bpf_attr attr;
	int fd;

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 1 (allow) */
	insns[0].dst_reg = BPF_REG_0;
	insns[0].imm = 1;
	insns[1].code = BPF_JMP | BPF_EXIT;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = type;
	attr.expected_attach_type = attach;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uint64_t)(uintptr_t)"GPL";
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	/* 15 characters and the NUL of the zeroed attr: BPF_OBJ_NAME_LEN is 16. */
	memcpy(attr.prog_name, "hb_attach_floor", sizeof("hb_attach_floor") - 1);
	fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0)
		refuse("BPF_PROG_LOAD (run as root; the kernel needs CONFIG_CGROUP_BPF, and Linux 5.8 for getsockname4)",
		       NULL, errno);
	return fd;
}

static int prog_id(int fd)
{
	struct bpf_prog_info info;
	union bpf_attr attr;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uint64_t)(uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0)
		return 0;
	return (int)info.id;
}

static int link_create(int prog, int cgroup, enum bpf_attach_type attach)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.link_create.prog_fd = prog;
	attr.link_create.target_fd = cgroup;
	attr.link_create.attach_type = attach;
	return (int)sys_bpf(BPF_LINK_CREATE, &attr);
}

static int link_detach(int link)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.link_detach.link_fd = link;
	return (int)sys_bpf(BPF_LINK_DETACH, &attr);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		refuse(what, s, 0);
	return v;
}

static int open_cgroup(const char *path)
{
	int fd;

	/* Only hookbench's own run subtrees: the harness checks it too. */
	if (!strstr(path, "/hookbench-"))
		refuse("refusing a cgroup outside a hookbench-* run directory:", path, 0);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		refuse("open", path, errno);
	return fd;
}

int main(int argc, char **argv)
{
	enum bpf_prog_type type;
	enum bpf_attach_type attach;
	uint64_t *a, *d, overhead;
	long samples, warmup, cpu, i, migrations = 0;
	int prog, top, keeper, keep_link, first_cpu, last_cpu;

	if (argc < 7)
		refuse("usage: attach_floor getsockname4|sock_create TOP KEEPER SAMPLES WARMUP CPU [REQUEST]", NULL, 0);
	if (!strcmp(argv[1], "getsockname4")) {
		type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
		attach = BPF_CGROUP_INET4_GETSOCKNAME;
	} else if (!strcmp(argv[1], "sock_create")) {
		type = BPF_PROG_TYPE_CGROUP_SOCK;
		attach = BPF_CGROUP_INET_SOCK_CREATE;
	} else {
		refuse("unknown attach type (use getsockname4 or sock_create):", argv[1], 0);
	}
	samples = parse_long(argv[4], "bad SAMPLES (1..1000000):", 1, MAX_SAMPLES);
	warmup = parse_long(argv[5], "bad WARMUP (0..1000000):", 0, MAX_SAMPLES);
	cpu = parse_long(argv[6], "bad CPU (-1 or a CPU number):", -1, CPU_SETSIZE - 1);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			refuse("sched_setaffinity to CPU", argv[6], errno);
	}
	a = calloc((size_t)samples, sizeof(*a));
	d = calloc((size_t)samples, sizeof(*d));
	if (!a || !d)
		refuse("out of memory for the samples", NULL, ENOMEM);
	top = open_cgroup(argv[2]);
	keeper = open_cgroup(argv[3]);
	prog = load_prog(type, attach);
	keep_link = link_create(prog, keeper, attach);
	if (keep_link < 0)
		refuse("BPF_LINK_CREATE at", argv[3], errno);
	overhead = clock_overhead_ns();
	first_cpu = last_cpu = sched_getcpu();
	for (i = -warmup; i < samples; i++) {
		uint64_t t0, t1, t2, t3;
		int link, cur;

		t0 = now_ns();
		link = link_create(prog, top, attach);
		t1 = now_ns();
		if (link < 0)
			refuse("BPF_LINK_CREATE at", argv[2], errno);
		t2 = now_ns();
		if (link_detach(link) != 0)
			refuse("BPF_LINK_DETACH at", argv[2], errno);
		t3 = now_ns();
		close(link);
		cur = sched_getcpu();
		if (i >= 0) {
			a[i] = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
			d[i] = t3 - t2 > overhead ? t3 - t2 - overhead : 0;
			migrations += cur != last_cpu;
		}
		last_cpu = cur;
	}
	printf("HOOKBENCH-REPORT {\"report\":{\"pid\":%d,\"prog_id\":%d,\"clock_overhead_ns\":%llu,", (int)getpid(),
	       prog_id(prog), (unsigned long long)overhead);
	if (first_cpu >= 0)
		printf("\"cpu\":%d,", first_cpu);
	printf("\"cpu_migrations\":%ld,\"attach_ns\":[", migrations);
	for (i = 0; i < samples; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)a[i]);
	printf("],\"detach_ns\":[");
	for (i = 0; i < samples; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)d[i]);
	printf("]}}\n");
	close(keep_link);
	close(prog);
	free(a);
	free(d);
	return 0;
}
