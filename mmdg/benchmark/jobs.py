"""One measurement job (a dict with ``kind`` and the measurement's arguments) run in the current process."""
from mmdg.benchmark import adapters, recipe

MEASURES = {**recipe.MEASURES, **adapters.MEASURES}


def run_job(job: dict) -> dict:
    job = dict(job)
    threads = job.pop('threads', None)
    if threads:
        import torch
        torch.set_num_threads(threads)
    return MEASURES[job.pop('kind')](**job)
