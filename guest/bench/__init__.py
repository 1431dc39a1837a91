"""Guest-side benchmark tools (standard library only): raw MTD and file throughput.

python3 -m guest.bench mtd /dev/mtdN ...   sequential erase/write/read, random page reads
python3 -m guest.bench file DIR ...         file write (+fsync), remount, file read
python3 -m guest.bench server [--profile F] the server's own cost per request, no kernel

Each prints one line "BENCH {json}" that the host (harness/tools/bench/run.py) parses.
"""
