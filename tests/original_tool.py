#!/usr/bin/env python3
"""The original tool's capacity object, rebuilt from its formatting logic, for byte comparisons.

Usage: TZ=ZONE python3 tests/original_tool.py TREE_JSON EPOCH_SECONDS...

For each EPOCH_SECONDS, writes the object key, a newline, the body exactly as the original
wrote it to its file, and a NUL byte. The original read the clock itself (datetime.now() for
the key, time.localtime() for the lines); here both come from EPOCH_SECONDS, in the local zone
TZ selects, so that the result can be compared with the exporter's for the same fire time.
"""

import datetime
import json
import sys
import time


def capacity_object(tree, epoch):
    key = datetime.datetime.fromtimestamp(epoch).strftime("pool.%Y-%m-%d/%H/%M/%S")
    t = time.localtime(epoch)
    body = ""
    for node in tree["nodes"]:
        if node["type"] != "root":
            continue
        body += (
            time.strftime("%Y/%m/%d/%H:%M:%S", t)
            + ">"
            + node["name"]
            + ":"
            + str(node["kb"])
            + " kb "
            + str(node["kb_avail"])
            + " kb_avail "
            + str(node["kb_used"])
            + " kb_used\n"
        )
    return key + "\n" + body


def main():
    with open(sys.argv[1]) as f:
        tree = json.load(f)
    for epoch in sys.argv[2:]:
        sys.stdout.buffer.write((capacity_object(tree, int(epoch)) + "\0").encode())


if __name__ == "__main__":
    main()
