"""``python -m mmdg.benchmark.child JOB_JSON``: one measurement in a fresh interpreter; prints its JSON."""
import json
import sys

from mmdg.benchmark.jobs import run_job

if __name__ == '__main__':
    print(json.dumps(run_job(json.loads(sys.argv[1]))))
