// SPDX-License-Identifier: GPL-2.0
/* A file shaped like muse.c, for the mutant generator's tests: if (x < 1) */
#include <linux/module.h>
#define LIMIT(x) ((x) < 16 && \
		  (x) > 0)

static int demo(struct demo *d, int n)
{
	int ret = 0;

	mutex_lock(&d->lock);
	if (n >= 4 || d->count == 0) {
		pr_warn("n < 4 or count == 0: %d\n", n);
		ret = -EINVAL;
		goto out;
	}
	d->count = d->count + n;
	ret = frobnicate(d,
			 n << 2);
out:
	mutex_unlock(&d->lock);
	return ret;
}
