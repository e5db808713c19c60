"""Self cost per request from one callgrind dump (written uncompressed).

Usage: callgrind_per_request.py <name> <dump> <requests/s> <seconds> [top-n]
Prints "<name>: <instructions per request>", then the top-n functions."""
import collections
import sys


def main():
    name, path = sys.argv[1], sys.argv[2]
    requests = float(sys.argv[3] or 0) * float(sys.argv[4])
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    cost = collections.Counter()
    fn, after_call, total = None, False, 0
    with open(path) as f:
        for line in f:
            if line.startswith('fn='):
                fn = line[3:].rstrip('\n')
            elif line.startswith('calls='):
                after_call = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in '+-*':
                if after_call:
                    after_call = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    cost[fn] += int(parts[1])
                    total += int(parts[1])
    if requests <= 0:
        sys.exit(f'{name}: no requests counted')
    print(f'{name:<20} {total / requests:8.0f} instructions/request ({requests:.0f} requests)')
    for fname, c in cost.most_common(top):
        print(f'    {c / requests:8.1f}  {fname[:110]}')


main()
