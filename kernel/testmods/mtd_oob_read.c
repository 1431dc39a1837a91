// SPDX-License-Identifier: GPL-2.0
/*
 * mtd_oob_read - one mtd_read_oob() with an in-band and an OOB buffer, made
 * the way in-kernel MTD users (mtdswap, sm_ftl, the NAND tests) make it, for
 * the MUSE harness's tests.
 *
 * Userspace cannot see what such a call returns: MEMREAD, the only ioctl
 * that passes both buffers, recomputes its result from the ECC counters and
 * loops until each part's length is done. The outcome of the one call made
 * at load time is left in read-only parameters:
 *   ret, retlen, oobretlen  what mtd_read_oob() returned and set;
 *   data_crc, oob_crc       the CRC-32 (as zlib computes it) of both buffers,
 *                           which are filled with 0x5a before the call;
 *   max_bitflips, corrected the call's mtd_req_stats (what the driver's
 *                           return value and ECC counters made of it).
 * ooblen=0 makes an in-band-only read.
 */
#include <linux/crc32.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/mtd/mtd.h>
#include <linux/slab.h>

static int dev = -1;
module_param(dev, int, 0444);
MODULE_PARM_DESC(dev, "MTD index");

static unsigned long long offs;
module_param(offs, ullong, 0444);
MODULE_PARM_DESC(offs, "where to read, in bytes");

static uint len = 2048;
module_param(len, uint, 0444);
MODULE_PARM_DESC(len, "in-band bytes to read");

static uint ooblen = 64;
module_param(ooblen, uint, 0444);
MODULE_PARM_DESC(ooblen, "OOB bytes to read");

static uint mode = MTD_OPS_PLACE_OOB;
module_param(mode, uint, 0444);
MODULE_PARM_DESC(mode, "MTD_OPS_*: 0 place, 1 auto, 2 raw");

static int ret;
module_param(ret, int, 0444);
static uint retlen, oobretlen, data_crc, oob_crc, max_bitflips, corrected;
module_param(retlen, uint, 0444);
module_param(max_bitflips, uint, 0444);
module_param(corrected, uint, 0444);
module_param(oobretlen, uint, 0444);
module_param(data_crc, uint, 0444);
module_param(oob_crc, uint, 0444);

static int __init mtd_oob_read_init(void)
{
	struct mtd_req_stats stats = {};
	struct mtd_oob_ops ops = { .mode = mode, .len = len, .ooblen = ooblen, .stats = &stats };
	struct mtd_info *mtd;
	int err = -ENOMEM;

	mtd = get_mtd_device(NULL, dev);
	if (IS_ERR(mtd))
		return PTR_ERR(mtd);

	ops.datbuf = kmalloc(len, GFP_KERNEL);
	ops.oobbuf = kmalloc(ooblen, GFP_KERNEL);
	if (!ops.datbuf || !ops.oobbuf)
		goto out;
	memset(ops.datbuf, 0x5a, len);
	memset(ops.oobbuf, 0x5a, ooblen);

	ret = mtd_read_oob(mtd, offs, &ops);
	retlen = ops.retlen;
	oobretlen = ops.oobretlen;
	max_bitflips = stats.max_bitflips;
	corrected = stats.corrected_bitflips;
	data_crc = ~crc32_le(~0, ops.datbuf, len);
	oob_crc = ~crc32_le(~0, ops.oobbuf, ooblen);
	err = 0;
out:
	kfree(ops.datbuf);
	kfree(ops.oobbuf);
	put_mtd_device(mtd);
	return err;
}

static void __exit mtd_oob_read_exit(void)
{
}

module_init(mtd_oob_read_init);
module_exit(mtd_oob_read_exit);
MODULE_DESCRIPTION("One mtd_read_oob() with in-band and OOB data, for tests");
MODULE_LICENSE("GPL");
