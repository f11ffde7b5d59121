// SPDX-License-Identifier: GPL-2.0-only
/*
 * hookbench_main.c: hookbench.ko's entry points: module init/exit, the misc device
 * /dev/hookbench (one session per open file, freed on release), and the ioctls of
 * uapi/hookbench_kmod.h with every argument checked before anything is touched. The models are
 * in hb_models.c (task-chain, task-hook-array) and hb_cgroup.c (cgroup-effective,
 * global-filter), the hook in hb_fire.c.
 *
 * hookbench.ko implements the dispatch models hookbench compares (ARCHITECTURE.md, "Names":
 * task-chain, task-hook-array, cgroup-effective, global-filter) on one synthetic hook path,
 * running the same eBPF programs (BPF_PROG_TYPE_RAW_TRACEPOINT, or BPF_PROG_TYPE_SYSCALL on a
 * kernel without BPF_EVENTS such as User-Mode Linux; loaded by userspace and passed by fd) or a
 * built-in null body in each, so that only the dispatch differs.
 */
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "hb_internal.h"

/*
 * The program type of the bodies, one per kernel and the same for every model:
 * BPF_PROG_TYPE_RAW_TRACEPOINT needs CONFIG_BPF_EVENTS (perf events), which User-Mode Linux
 * lacks; there BPF_PROG_TYPE_SYSCALL, whose context is a plain buffer like ours. Userspace reads
 * the choice from /sys/module/hookbench/parameters/body_prog_type and loads its bodies so.
 */
#ifdef CONFIG_BPF_EVENTS
#define HB_BODY_PROG_TYPE BPF_PROG_TYPE_RAW_TRACEPOINT
static char *body_prog_type = "raw_tracepoint";
#else
#define HB_BODY_PROG_TYPE BPF_PROG_TYPE_SYSCALL
static char *body_prog_type = "syscall";
#endif
module_param(body_prog_type, charp, 0444);
MODULE_PARM_DESC(body_prog_type, "program type of the BPF bodies (read-only): raw_tracepoint or syscall");

/* Resolves prog_fd to a program with one reference (or the null body). */
static struct bpf_prog *hb_prog_get(s32 fd)
{
	struct bpf_prog *prog;

	if (fd == HB_KMOD_PROG_NULL_BODY)
		return HB_NULL_BODY;
	if (fd < 0)
		return ERR_PTR(-EBADF);
	prog = bpf_prog_get_type_dev(fd, HB_BODY_PROG_TYPE, false);
	if (IS_ERR(prog))
		return prog;
	/* as __bpf_probe_register(): the program may not read past the context */
	if (prog->aux->max_ctx_offset > HB_KMOD_CTX_ARGS * sizeof(u64)) {
		bpf_prog_put(prog);
		return ERR_PTR(-EINVAL);
	}
	return prog;
}

/* Whether a caller of ABI @v is served (uapi header: "Versions"). */
static bool hb_abi_served(u32 v)
{
	return v >= HB_KMOD_ABI_VERSION_MIN && v <= HB_KMOD_ABI_VERSION;
}

/*
 * Copies ioctl argument @v_ (a struct of the uapi header) in from @uarg_ and checks it: 0,
 * -EFAULT, -EPROTO (another ABI version) or -EINVAL (reserved bits set, or @invalid_, which is
 * evaluated on the copy). A macro so that one check serves every struct.
 */
#define hb_copy_in(v_, uarg_, invalid_)							\
	(copy_from_user(&(v_), (uarg_), sizeof(v_)) ? -EFAULT :				\
	 !hb_abi_served((v_).abi_version) ? -EPROTO :					\
	 (v_).reserved || (invalid_) ? -EINVAL : 0)

/* Copies ioctl argument @v_ back out to @uarg_: 0 or -EFAULT. */
#define hb_copy_out(uarg_, v_) (copy_to_user((uarg_), &(v_), sizeof(v_)) ? -EFAULT : 0)

static long hb_ioc_version(void __user *uarg)
{
	struct hb_kmod_version v = {
		.abi_version = HB_KMOD_ABI_VERSION,
		.models = HB_KMOD_MODELS,
		.max_hooks = HB_KMOD_MAX_HOOKS,
		.max_progs = HB_KMOD_MAX_PROGS,
		.max_task_progs = HB_KMOD_MAX_TASK_PROGS,
		.max_batch = HB_KMOD_MAX_BATCH,
		.max_samples = HB_KMOD_MAX_SAMPLES,
		.ctx_args = HB_KMOD_CTX_ARGS,
		.max_fires = HB_KMOD_MAX_FIRES,
		.max_batch_work = HB_KMOD_MAX_BATCH_WORK,
	};

	return hb_copy_out(uarg, v);
}

static bool hb_is_task_model(u32 model)
{
	return model == HB_KMOD_MODEL_TASK_CHAIN || model == HB_KMOD_MODEL_TASK_HOOK_ARRAY;
}

static long hb_ioc_attach(struct hb_session *s, void __user *uarg, bool attach)
{
	struct cgroup *cgrp = NULL;
	struct hb_kmod_attach a;
	struct bpf_prog *prog;
	int err;

	err = hb_copy_in(a, uarg, a.model >= HB_KMOD_MODELS || a.hook >= HB_KMOD_MAX_HOOKS);
	if (err)
		return err;
	if (a.model == HB_KMOD_MODEL_CGROUP_EFFECTIVE) {
		/* ATTACH: NONE, OVERRIDE or MULTI (OVERRIDE|MULTI is EINVAL, as in the kernel) */
		if (attach && a.flags != 0 && a.flags != HB_KMOD_F_ALLOW_OVERRIDE &&
		    a.flags != HB_KMOD_F_ALLOW_MULTI)
			return -EINVAL;
		if (!attach && a.flags)
			return -EINVAL;
	} else {
		if (a.flags || a.cgroup_fd != HB_KMOD_NO_CGROUP)
			return -EINVAL;
		if (!attach && hb_is_task_model(a.model))
			return -EOPNOTSUPP;
	}

	prog = hb_prog_get(a.prog_fd);
	if (IS_ERR(prog))
		return PTR_ERR(prog);
	if (a.model == HB_KMOD_MODEL_CGROUP_EFFECTIVE) {
		cgrp = cgroup_get_from_fd(a.cgroup_fd);
		if (IS_ERR(cgrp)) {
			hb_prog_put(prog);
			return PTR_ERR(cgrp);
		}
	}

	a.elapsed_ns = 0;
	a.recomputed = 0;
	a.count = 0;
	switch (a.model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		err = hb_task_install(s, a.model, prog, a.hook, &a);
		break;
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		err = hb_cgroup_update(s, cgrp, prog, a.hook, a.flags, attach, &a);
		break;
	default:
		err = hb_global_update(s, prog, a.hook, attach, &a);
		break;
	}
	if (cgrp)
		cgroup_put(cgrp);
	/* attach: the attachment owns the reference on success; detach: it was only a name */
	if (err || !attach)
		hb_prog_put(prog);
	return err ?: hb_copy_out(uarg, a);
}

static long hb_ioc_fire(struct hb_session *s, void __user *uarg)
{
	struct hb_kmod_fire f;
	int err = hb_copy_in(f, uarg, f.flags || f.model >= HB_KMOD_MODELS ||
				      f.hook >= HB_KMOD_MAX_HOOKS);

	return err ?: hb_fire_once(s, &f) ?: hb_copy_out(uarg, f);
}

/*
 * RUN (@v1: HB_KMOD_IOC_RUN_V1, an ABI 1 caller's 64-byte struct: working set 1, and only those
 * bytes are copied back).
 */
static long hb_ioc_run(struct hb_session *s, void __user *uarg, bool v1)
{
	struct hb_kmod_run r;
	size_t size = v1 ? HB_KMOD_RUN_V1_SIZE : sizeof(r);
	u32 want = v1 ? 1 : HB_KMOD_ABI_VERSION;
	int err;

	memset(&r, 0, sizeof(r));
	if (copy_from_user(&r, uarg, size))
		return -EFAULT;
	if (r.abi_version != want)
		return -EPROTO;
	if (v1)
		r.working_set = 1;
	if (r.reserved || r.reserved2 || r.flags || r.model >= HB_KMOD_MODELS ||
	    r.hook >= HB_KMOD_MAX_HOOKS || !r.batch || !r.samples || !r.working_set ||
	    (r.working_set == 1 && r.seed) ||
	    (r.working_set > 1 && r.model == HB_KMOD_MODEL_GLOBAL_FILTER))
		return -EINVAL;
	if (r.batch > HB_KMOD_MAX_BATCH || r.samples > HB_KMOD_MAX_SAMPLES ||
	    (u64)r.batch * r.samples > HB_KMOD_MAX_FIRES || r.working_set > HB_KMOD_MAX_WORKING_SET)
		return -E2BIG;
	r.progs_run = 0;
	r.progs_per_fire = 0;
	r.verdict = 0;
	r.total_ns = 0;
	r.working_set_bytes = 0;
	r.states_digest = 0;
	err = hb_run_loop(s, &r);
	if (err)
		return err;
	return copy_to_user(uarg, &r, size) ? -EFAULT : 0;
}

static long hb_ioc_reset(struct hb_session *s, void __user *uarg)
{
	struct hb_kmod_reset r;
	int err = hb_copy_in(r, uarg, r.flags);

	if (!err)
		hb_session_reset(s);
	return err;
}

static long hb_ioc_stats(struct hb_session *s, void __user *uarg)
{
	struct hb_kmod_stats st;
	int err = hb_copy_in(st, uarg, st.flags);

	if (err)
		return err;
	st.task_entries = atomic64_read(&s->stats[HB_ST_TASK_ENTRIES]);
	st.cgroup_entries = atomic64_read(&s->stats[HB_ST_CGROUP_ENTRIES]);
	st.chain_nodes = atomic64_read(&s->stats[HB_ST_CHAIN_NODES]);
	st.task_arrays = atomic64_read(&s->stats[HB_ST_TASK_ARRAYS]);
	st.prog_arrays = atomic64_read(&s->stats[HB_ST_PROG_ARRAYS]);
	st.attachments = atomic64_read(&s->stats[HB_ST_ATTACHMENTS]);
	st.bytes = atomic64_read(&s->stats[HB_ST_BYTES]);
	st.forks_shared = atomic64_read(&s->stats[HB_ST_FORKS_SHARED]);
	st.forks_nomem = atomic64_read(&s->stats[HB_ST_FORKS_NOMEM]);
	st.exits_released = atomic64_read(&s->stats[HB_ST_EXITS_RELEASED]);
	return hb_copy_out(uarg, st);
}

static long hb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct hb_session *s = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case HB_KMOD_IOC_VERSION:
		return hb_ioc_version(uarg);
	case HB_KMOD_IOC_ATTACH:
		return hb_ioc_attach(s, uarg, true);
	case HB_KMOD_IOC_DETACH:
		return hb_ioc_attach(s, uarg, false);
	case HB_KMOD_IOC_FIRE:
		return hb_ioc_fire(s, uarg);
	case HB_KMOD_IOC_RUN:
		return hb_ioc_run(s, uarg, false);
	case HB_KMOD_IOC_RUN_V1:
		return hb_ioc_run(s, uarg, true);
	case HB_KMOD_IOC_RESET:
		return hb_ioc_reset(s, uarg);
	case HB_KMOD_IOC_STATS:
		return hb_ioc_stats(s, uarg);
	default:
		return -ENOTTY;
	}
}

static int hb_open(struct inode *inode, struct file *file)
{
	struct hb_session *s;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	s = hb_session_create();
	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return 0;
}

static int hb_release(struct inode *inode, struct file *file)
{
	hb_session_destroy(file->private_data);
	return 0;
}

static const struct file_operations hb_fops = {
	.owner = THIS_MODULE,
	.open = hb_open,
	.release = hb_release,
	.unlocked_ioctl = hb_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice hb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "hookbench",
	.fops = &hb_fops,
	.mode = 0600,
};

static int __init hb_init(void)
{
	int err;

	/* the ABI's layout (the Rust mirror checks the same numbers) */
	BUILD_BUG_ON(sizeof(struct hb_kmod_version) != 48);
	BUILD_BUG_ON(sizeof(struct hb_kmod_attach) != 48);
	BUILD_BUG_ON(sizeof(struct hb_kmod_fire) != 40);
	BUILD_BUG_ON(sizeof(struct hb_kmod_run) != 96);
	BUILD_BUG_ON(offsetof(struct hb_kmod_run, working_set) != HB_KMOD_RUN_V1_SIZE);
	BUILD_BUG_ON(sizeof(struct hb_kmod_reset) != 16);
	BUILD_BUG_ON(sizeof(struct hb_kmod_stats) != 96);
	/* the shared empty array's NULL slot is its progs[0] */
	BUILD_BUG_ON(offsetof(struct hb_empty_prog_array, null_prog) !=
		     offsetof(struct hb_prog_array, progs));

	err = hb_probes_register();
	if (err)
		return err;
	err = misc_register(&hb_misc);
	if (err) {
		hb_probes_unregister();
		return err;
	}
	pr_info("hookbench: /dev/hookbench ready (ABI %d, %d hooks)\n", HB_KMOD_ABI_VERSION,
		HB_KMOD_MAX_HOOKS);
	return 0;
}

static void __exit hb_exit(void)
{
	/* no session is left: every open file holds a module reference (fops.owner) */
	misc_deregister(&hb_misc);
	hb_probes_unregister();
	hb_deferred_flush();
	pr_info("hookbench: unloaded\n");
}

module_init(hb_init);
module_exit(hb_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hookbench: the dispatch models of hookbench on one synthetic hook");
