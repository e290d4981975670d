"""What the benchmark tools share: device synchronisation and CPU peak memory of a timed section."""
import os


def sync(device):
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def release_freed_heap():
    """glibc keeps freed heap in the process; hand it back so that RSS tracks live memory."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:  # not glibc: RSS then over-counts a little
        pass


class RssSampler:
    """CPU peak memory of the training steps alone: the resident set size sampled every 2 ms from a
    thread (ru_maxrss would include the model's construction and SoRA's SVD)."""

    def __init__(self):
        import threading
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mb():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_mb())
            self._stop.wait(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss_mb())
