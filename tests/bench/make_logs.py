"""Writes log-like text files of 1-10 MiB for the benchmarks: by default 200 (1.2 GB), the same
bytes on every run for a seed. Usage: make_logs.py DIR [COUNT] [SEED]"""
import random
import sys

count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(2, 9)))
         for _ in range(5000)]
for i in range(count):
    size = random.randint(1, 10) << 20
    lines, n = [], 0
    while n < size:
        line = f"{random.randint(0, 10**9)} {' '.join(random.choices(words, k=8))}\n"
        lines.append(line)
        n += len(line)
    with open(f'{sys.argv[1]}/f{i:03}.log', 'w') as f:
        f.write(''.join(lines)[:size])
