"""Bench: a fixed amount of pure-Python work (the CPU-heavy callback's body), shared by the
mqttflow callback (heavy.py) and the threaded-framework model (threaded_relay.py)."""


def work(loops):
    acc = 0
    for i in range(loops):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def calibrate(target_us=200.0):
    """The loop count that takes about target_us on this machine now (best of 20)."""
    import time
    n = 1000
    best = None
    for _ in range(20):
        t = time.perf_counter()
        work(n)
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return max(1, int(n * target_us / 1e6 / best))


if __name__ == "__main__":
    print(calibrate())
