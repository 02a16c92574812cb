BENCHMARKS: list = []
