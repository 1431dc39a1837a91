"""python3 -m guest.workloads prepare|run|verify|cutcheck: the power-cut workload.

  prepare --root DIR --record REC --seed S --tag T [--control SOCK]
      make the tree under DIR durable and record it as the base (REC: a
      directory off the flash, e.g. under /tmp)
  run --root DIR --record REC [--control SOCK] [--steps N] [--seconds T]
      churn files until N more steps, T seconds or the first error (the cut);
      prints a JSON summary; may be run again to continue the same record
  verify --root DIR --record REC [--cut N]
      after the cut and a remount: compare the tree with the record (N: the
      op the cut tore, for a record with op counts). Prints a JSON verdict;
      exits 0 when every synced file is intact and nothing else is wrong
  cutcheck --oplog LOG --record REC --cut N [--session K] [--seed S] [--torn M]
           [--lose K]
      replay LOG to the cut, serve the image, attach, mount, verify, clean up
      (cutcheck.py); the reproduction of a failing cut. --lose K: the device
      forgets its last K acknowledged ops (the check must then find losses)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..muse.devices.torn import TORN_MODES
from .cutcheck import cutcheck
from .fsmodel import read_record
from .fsworkload import Workload
from .verify import verify


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m guest.workloads", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare")
    run = sub.add_parser("run")
    check = sub.add_parser("verify")
    cut = sub.add_parser("cutcheck")
    for p in (prepare, run, check, cut):
        p.add_argument("--record", required=True, help="the workload record directory")
    for p in (prepare, run, check):
        p.add_argument("--root", required=True, help="the tree (the UBIFS mount point)")
    for p in (prepare, run):
        p.add_argument("--control", help="the MUSE server's control socket (op counts)")
    prepare.add_argument("--seed", type=int, required=True)
    prepare.add_argument("--tag", required=True, help="prefix of the file names")
    run.add_argument("--steps", type=int, default=100)
    run.add_argument("--seconds", type=float, default=600)
    check.add_argument("--cut", type=int)
    cut.add_argument("--oplog", required=True)
    cut.add_argument("--cut", type=int, required=True)
    cut.add_argument("--session", type=int)
    cut.add_argument("--seed", type=int, help="torn-write seed (default: the run's)")
    cut.add_argument("--torn", choices=TORN_MODES, help="default: the run's")
    cut.add_argument("--lose", type=int, default=0,
                     help="the device loses its last K acknowledged ops (negative test)")
    cut.add_argument("--image", default="/tmp/cut.img")
    cut.add_argument("--ubi", type=int, default=9, help="UBI device number to attach as")
    cut.add_argument("--mnt", default="/mnt/cutcheck")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: dict[str, object]
    if args.command in ("verify", "cutcheck"):
        if args.command == "verify":
            result = verify(args.root, args.record, args.cut)
        else:
            result = cutcheck(args.oplog, args.record, args.cut, session=args.session,
                              seed=args.seed, torn=args.torn, lose=args.lose,
                              image=args.image, ubi=args.ubi, mnt=args.mnt)
        print(json.dumps(result, sort_keys=True))
        return 0 if result["ok"] else 1
    if args.command == "prepare":
        os.makedirs(args.record, exist_ok=True)
        work = Workload(args.root, args.record, args.seed, args.tag, control=args.control)
        result = work.prepare()
    else:
        start = read_record(args.record)[0]
        work = Workload(args.root, args.record, int(start["seed"]), str(start["tag"]),
                        control=args.control)
        work.resume()
        result = work.run(args.steps, args.seconds)
    work.close()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
