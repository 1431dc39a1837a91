// SPDX-License-Identifier: GPL-2.0
/* Deliberate W=1 and sparse findings, to capture real kbuild output for the harness's tests. */
#include <linux/module.h>
#include <linux/uaccess.h>
#include "fuse_i.h"

int demo_no_prototype(int x)
{
	int unused_but_set;

	unused_but_set = x;
	return x + 1;
}

static int demo_user(int *p)
{
	int __user *up = (int __user *)p;
	int v;

	if (get_user(v, up))
		return -EFAULT;
	return *(int *)up + v;
}

static int __init demo_init(void)
{
	int k = 1;

	return demo_user(&k) - demo_no_prototype(k) + 1 - 1 > 100;
}
module_init(demo_init);
MODULE_LICENSE("GPL");
