"""measure.py - Redis CPU and memory per run of the layout v2 sketch (lib.lua), measured on a real
redis-server: the figures behind docs/redis-layout-v2.md. Python with a 60-line RESP client, so
that it needs nothing beyond Debian's python3; the client's own speed does not matter, since every
figure is Redis's (INFO cpu and memory deltas divided by the runs).

  measure.py PORT drain N BATCH RETENTION FENCE   enqueue N runs in batches, then claim them with
                                                  XREADGROUP COUNT BATCH and finish each batch in
                                                  one call. RETENTION: ms, -1 kept without expiry
                                                  (pruned from the done index), 0 keep none.
                                                  FENCE 1: check the lease (PEL) per run.
  measure.py PORT steps N BATCH                   the same with five step records per run, each
                                                  loop turn's records in one call.
It FLUSHALLs the Redis at PORT.
"""
import os
import socket
import sys


class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.rd = self.sock.makefile('rb')

    @staticmethod
    def encode(args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def reply(self):
        line = self.rd.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise RuntimeError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self.rd.read(n + 2)[:-2]
        n = int(rest)
        return None if n < 0 else [self.reply() for _ in range(n)]

    def __call__(self, *args):
        self.sock.sendall(self.encode(args))
        return self.reply()

    def info(self, section):
        fields = {}
        for line in self(b'INFO', section).decode().split('\r\n'):
            if ':' in line:
                k, v = line.split(':', 1)
                fields[k] = v
        return fields

    def cpu(self):
        d = self.info('cpu')
        return float(d['used_cpu_sys']) + float(d['used_cpu_user'])

    def mem(self):
        return int(self.info('memory')['used_memory'])


Q, DONE, HIST = 'wf:{bench}:queue', 'wf:{bench}:done', 'wf:{bench}:hist:c:0'
PAYLOAD = b'\x81\xa1n\xcd\x01\x02' * 3  # 18 bytes, about the bench's small input
STEP = b'\x86\xa1k\xa3run\xa1s\xa4done\xa1n\x01\xa2t0\xcf' + b'\0' * 8 + b'\xa2t1\xcf' + b'\0' * 8


def setup(r):
    r('FLUSHALL')
    lib = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib.lua')).read()
    r('FUNCTION', 'LOAD', 'REPLACE', lib)
    r('XGROUP', 'CREATE', Q, 'workers', '0', 'MKSTREAM')


def enqueue(r, n, batch):
    for _ in range(0, n, batch):
        r('FCALL', 'wfs_enqueue', 1, Q, *([PAYLOAD] * batch))


def finish(r, entries, retention, fence):
    keys, args = [Q, DONE, HIST], ['c1', retention, fence]
    for e in entries:
        keys.append('wf:{bench}:run:bench:' + e[0].decode())
        args += [e[0], '1', b'\xc0', e[1][1], '1733230000000']
    r('FCALL', 'wfs_finish', len(keys), *keys, *args)


def read(r, batch):
    return r('XREADGROUP', 'GROUP', 'workers', 'c1', 'COUNT', batch, 'STREAMS', Q, '>')[0][1]


def drain(r, n, batch, retention, fence):
    setup(r)
    m0, c0 = r.mem(), r.cpu()
    enqueue(r, n, batch)
    c1, m1 = r.cpu(), r.mem()
    print('enqueue, batch %d: %.2f us/run, %.1f B/queued run' %
          (batch, (c1 - c0) * 1e6 / n, (m1 - m0) / n))
    done = 0
    while done < n:
        entries = read(r, batch)
        done += len(entries)
        finish(r, entries, retention, fence)
    print('claim+finish, batch %d, retention %s, fence %s: %.2f us/run, %.1f B/finished run' %
          (batch, retention, fence, (r.cpu() - c1) * 1e6 / n, (r.mem() - m0) / n))


def steps(r, n, batch):
    setup(r)
    enqueue(r, n, batch)
    c0, m0 = r.cpu(), r.mem()
    done = 0
    while done < n:
        entries = read(r, batch)
        done += len(entries)
        for s in range(5):
            keys, args = [Q], ['c1']
            for e in entries:
                keys.append('wf:{bench}:run:bench:' + e[0].decode() + ':steps')
                args += [e[0], '1', 'step%d' % s, STEP]
            r('FCALL', 'wfs_steps', len(keys), *keys, *args)
        finish(r, entries, '-1', '1')
    print('5-step runs, batch %d: %.2f us/run (claim, 5 steps, finish), %.0f B/finished run' %
          (batch, (r.cpu() - c0) * 1e6 / n, (r.mem() - m0) / n))


def main():
    r = Redis(int(sys.argv[1]))
    if sys.argv[2] == 'drain':
        drain(r, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        steps(r, int(sys.argv[3]), int(sys.argv[4]))


main()
