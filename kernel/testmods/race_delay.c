// SPDX-License-Identifier: GPL-2.0
/*
 * race_delay - hold a kernel code path for a while, to open a race window
 * that is otherwise microseconds wide, for the MUSE harness's tests.
 *
 * A kprobe on sysfs_create_file_ns() busy-waits delay_ms milliseconds, once,
 * when the attribute named attr is about to be created on the kobject named
 * kobj. "fired" turns 1 once that happened, so that a test can tell that its
 * window was really opened.
 *
 * The handler runs in int3 context, with interrupts off on that CPU; delays
 * of a few hundred milliseconds stay far below the lockup detectors.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kobject.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/sysfs.h>

static char *kobj = "";
module_param(kobj, charp, 0444);
MODULE_PARM_DESC(kobj, "name of the kobject");

static char *attr = "";
module_param(attr, charp, 0444);
MODULE_PARM_DESC(attr, "name of the attribute");

static uint delay_ms = 200;
module_param(delay_ms, uint, 0444);
MODULE_PARM_DESC(delay_ms, "how long to hold the creation");

static atomic_t fired_count = ATOMIC_INIT(0);
static int fired;
module_param(fired, int, 0444);
MODULE_PARM_DESC(fired, "1 once the delay has run (read only)");

static int race_delay_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct kobject *k = (void *)regs_get_kernel_argument(regs, 0);
	const struct attribute *a = (void *)regs_get_kernel_argument(regs, 1);
	const char *name = k ? kobject_name(k) : NULL;

	if (!name || !a || !a->name || strcmp(name, kobj) || strcmp(a->name, attr))
		return 0;
	if (atomic_inc_return(&fired_count) != 1)
		return 0;
	mdelay(delay_ms);
	WRITE_ONCE(fired, 1);
	return 0;
}

static struct kprobe race_delay_probe = {
	.symbol_name = "sysfs_create_file_ns",
	.pre_handler = race_delay_pre,
};

static int __init race_delay_init(void)
{
	int ret;

	if (!*kobj || !*attr) {
		pr_err("race_delay: kobj= and attr= are required\n");
		return -EINVAL;
	}
	ret = register_kprobe(&race_delay_probe);
	if (ret)
		pr_err("race_delay: register_kprobe: %d\n", ret);
	return ret;
}

static void __exit race_delay_exit(void)
{
	unregister_kprobe(&race_delay_probe);
}

module_init(race_delay_init);
module_exit(race_delay_exit);
MODULE_DESCRIPTION("Delay one sysfs attribute creation (test aid)");
MODULE_LICENSE("GPL");
