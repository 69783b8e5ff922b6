import sys

from bench.worker import forward

# BENCH_WORKER=auto: the command runs in the long-lived worker's fork (bench/worker.py);
# otherwise (or when no worker can be reached) here, as always.
code = forward(sys.argv[1:])
if code is None:
    from bench.cli import main

    code = main()
sys.exit(code)
