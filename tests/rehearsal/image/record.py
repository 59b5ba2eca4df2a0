#!/usr/bin/python3
"""Stands in for a command the program runs inside a container with docker exec
(pdm, grafana, python manage.py): it appends what it was asked to do to
/var/log/standin/exec.log, one JSON object a line, and succeeds."""

import json
import os
import sys
import time

# Found on PATH, the kernel runs the shebang with the script's absolute path
# (python3 /usr/local/bin/pdm run ...); `python manage.py ...` names the script
# as typed. Either way "invocation" is what the caller wrote.
original = sys.orig_argv
if len(original) > 1 and not original[1].startswith("/"):
    invocation = list(original)
else:
    invocation = [os.path.basename(sys.argv[0]), *sys.argv[1:]]

os.makedirs("/var/log/standin", exist_ok=True)
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
entry = {
    "invocation": invocation,
    "stdin": stdin,
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "time": time.time(),
}
with open("/var/log/standin/exec.log", "a") as log:
    log.write(json.dumps(entry) + "\n")
