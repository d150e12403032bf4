# Copied from shared/peers/torch/loadmon.py (the PyTorch CPU baseline written for melforge's
# comparison by the project's torch peer), unchanged below this header, so the comparison
# does not depend on files outside the repository. bench/compare_torch.sh runs it against
# `melforge bench`; bench/README.md says what both measure.
"""loadmon.py - how much CPU *other* processes used while we measured.

foreign_cores = (machine busy CPU-seconds from /proc/stat - this process's own
CPU-seconds incl. waited children) / wall seconds.  On this 2-core VM a value
near 1.0 means another job held a whole core during the measurement, which
ruins 2-thread numbers (OpenMP/OpenBLAS threads spin at barriers).
"""
import os
import resource
import time

_HZ = os.sysconf("SC_CLK_TCK")


def _busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / _HZ


def _own_s():
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class LoadMon:
    def __enter__(self):
        self.t0, self.b0, self.o0 = time.perf_counter(), _busy_s(), _own_s()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        own = _own_s() - self.o0
        busy = _busy_s() - self.b0
        self.wall = wall
        self.own_cores = own / wall if wall > 0 else 0.0
        self.foreign_cores = max(0.0, (busy - own) / wall) if wall > 0 else 0.0
        return False


def foreign_now(seconds=2.0):
    with LoadMon() as m:
        time.sleep(seconds)
    return m.foreign_cores


def wait_quiet(max_wait_s=0, threshold=0.15, probe_s=2.0, log=None):
    """Wait (up to max_wait_s) until other processes use < threshold cores."""
    t_end = time.time() + max_wait_s
    while True:
        f = foreign_now(probe_s)
        if f < threshold or time.time() >= t_end:
            if log:
                log("foreign load %.2f cores%s" % (f, "" if f < threshold else " (gave up waiting)"))
            return f
        if log:
            log("foreign load %.2f cores, waiting..." % f)
        time.sleep(10)
