// SPDX-License-Identifier: GPL-2.0
/*
 * race_delay - hold a kernel code path for a while, to open a race window
 * that is otherwise microseconds wide, for the MUSE harness's tests.
 *
 * A kprobe on func busy-waits delay_ms milliseconds, once, when func is
 * about to act on the kobject named kobj:
 *  - func=sysfs_create_file_ns (the default): before the attribute named
 *    attr is created on kobj;
 *  - func=device_register or device_add: before the device whose kobject
 *    is kobj is added to the driver core.
 * "fired" turns 1 once the delay has run, so that a test can tell that its
 * window was really opened.
 *
 * The handler runs in int3 context, with interrupts off on that CPU; delays
 * of a few hundred milliseconds stay far below the lockup detectors.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/kobject.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/sysfs.h>

static char *func = "sysfs_create_file_ns";
module_param(func, charp, 0444);
MODULE_PARM_DESC(func, "sysfs_create_file_ns, device_register or device_add");

static char *kobj = "";
module_param(kobj, charp, 0444);
MODULE_PARM_DESC(kobj, "name of the kobject");

static char *attr = "";
module_param(attr, charp, 0444);
MODULE_PARM_DESC(attr, "name of the attribute (sysfs_create_file_ns)");

static uint delay_ms = 200;
module_param(delay_ms, uint, 0444);
MODULE_PARM_DESC(delay_ms, "how long to hold func");

static atomic_t fired_count = ATOMIC_INIT(0);
static int fired;
module_param(fired, int, 0444);
MODULE_PARM_DESC(fired, "1 once the delay has run (read only)");

static bool on_device;	/* func's first argument is a struct device */

static bool race_delay_match(struct pt_regs *regs)
{
	void *arg0 = (void *)regs_get_kernel_argument(regs, 0);
	const struct attribute *a;
	const struct kobject *k;
	const char *name;

	if (!arg0)
		return false;
	k = on_device ? &((struct device *)arg0)->kobj : arg0;
	name = kobject_name(k);
	if (!name || strcmp(name, kobj))
		return false;
	if (on_device)
		return true;
	a = (void *)regs_get_kernel_argument(regs, 1);
	return a && a->name && !strcmp(a->name, attr);
}

static int race_delay_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (!race_delay_match(regs) || atomic_inc_return(&fired_count) != 1)
		return 0;
	mdelay(delay_ms);
	WRITE_ONCE(fired, 1);
	return 0;
}

static struct kprobe race_delay_probe = {
	.pre_handler = race_delay_pre,
};

static int __init race_delay_init(void)
{
	int ret;

	on_device = !strcmp(func, "device_register") || !strcmp(func, "device_add");
	if (!on_device && strcmp(func, "sysfs_create_file_ns")) {
		pr_err("race_delay: func=%s is not supported\n", func);
		return -EINVAL;
	}
	if (!*kobj || (!on_device && !*attr)) {
		pr_err("race_delay: kobj= (and attr= for %s) required\n", func);
		return -EINVAL;
	}
	race_delay_probe.symbol_name = func;
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
MODULE_DESCRIPTION("Hold one kernel path once (test aid)");
MODULE_LICENSE("GPL");
