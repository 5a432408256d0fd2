"""A D-Bus peer for vigil's private socket, for tests that need what vigilctl and busctl do
not give: watching signals (the private socket is peer-to-peer: no bus daemon, no match
rules, every connection gets every signal) and calling a method with arguments vigilctl
would never send (file descriptors with a crafted name, for example). On a bus daemon,
subscribe() asks for the broadcast signals of a match rule.

It speaks just enough of the wire protocol: the EXTERNAL handshake with file descriptor
passing, message headers, and bodies made of basic types (s o g y b n q i u x t d h).
Other bodies are kept as None."""

import os
import socket
import struct
import threading
import time

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL = 1, 2, 3, 4, 5
F_DESTINATION, F_SIGNATURE, F_UNIX_FDS = 6, 8, 9
BASIC = {"y": (1, "B"), "b": (4, "I"), "n": (2, "h"), "q": (2, "H"), "i": (4, "i"),
         "u": (4, "I"), "x": (8, "q"), "t": (8, "Q"), "d": (8, "d"), "h": (4, "I")}
FIELD_TYPES = {F_PATH: "o", F_INTERFACE: "s", F_MEMBER: "s", F_ERROR_NAME: "s",
               F_REPLY_SERIAL: "u", F_DESTINATION: "s", F_SIGNATURE: "g", F_UNIX_FDS: "u"}


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.e = "<" if data[0:1] == b"l" else ">"

    def align(self, n):
        self.pos = (self.pos + n - 1) // n * n

    def value(self, code):
        if code in ("s", "o"):
            n = self.value("u")
            s = self.data[self.pos:self.pos + n].decode(errors="replace")
            self.pos += n + 1
            return s
        if code == "g":
            n = self.data[self.pos]
            s = self.data[self.pos + 1:self.pos + 1 + n].decode()
            self.pos += n + 2
            return s
        if code not in BASIC:
            raise ValueError(f"type {code} not handled")
        size, fmt = BASIC[code]
        self.align(size)
        (v,) = struct.unpack_from(self.e + fmt, self.data, self.pos)
        self.pos += size
        return bool(v) if code == "b" else v


class _Writer:
    def __init__(self):
        self.data = bytearray()

    def align(self, n):
        self.data += b"\0" * (-len(self.data) % n)

    def value(self, code, v):
        if code in ("s", "o"):
            b = v.encode()
            self.value("u", len(b))
            self.data += b + b"\0"
        elif code == "g":
            b = v.encode()
            self.data += bytes([len(b)]) + b + b"\0"
        else:
            size, fmt = BASIC[code]
            self.align(size)
            self.data += struct.pack("<" + fmt, int(v) if code == "b" else v)


def _parse(msg):
    """(type, {field code: value}, body args or None) of one whole message."""
    r = _Reader(msg)
    mtype = msg[1]
    r.pos = 4
    r.value("u")  # body length
    r.value("u")  # serial
    fields_len = r.value("u")
    end = r.pos + fields_len
    fields = {}
    while r.pos < end:
        r.align(8)
        code = r.value("y")
        fields[code] = r.value(r.value("g"))
    r.align(8)
    sig = fields.get(F_SIGNATURE, "")
    args = None
    if all(c in "sog" or c in BASIC for c in sig):
        try:
            args = tuple(r.value(c) for c in sig)
        except (ValueError, struct.error, IndexError):
            args = None
    return mtype, fields, args


class Peer:
    """One connection to a unix socket path. Records (interface, member, args, time) of every
    signal until close(); call() sends a method call and waits for its reply."""

    def __init__(self, path):
        self.signals = []
        self.replies = {}
        self.error = None
        self.serial = 0
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode()
                          + b"\r\n")
        if not self._line().startswith(b"OK "):
            raise ConnectionError("EXTERNAL authentication refused")
        self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        self.fds_ok = self._line().startswith(b"AGREE_UNIX_FD")
        self.sock.sendall(b"BEGIN\r\n")
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _line(self):
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("the peer closed the connection during the handshake")
            reply += chunk
        return reply

    def _run(self):
        buf = b""
        try:
            while True:
                chunk, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
                for level, kind, data in anc:  # never wanted: close them
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        for fd in struct.unpack(f"{len(data) // 4}i", data[:len(data) // 4 * 4]):
                            os.close(fd)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 16:
                    e = "<" if buf[0:1] == b"l" else ">"
                    body_len, _, fields_len = struct.unpack_from(e + "III", buf, 4)
                    total = (16 + fields_len + 7) // 8 * 8 + body_len
                    if len(buf) < total:
                        break
                    msg, buf = buf[:total], buf[total:]
                    mtype, fields, args = _parse(msg)
                    with self.cond:
                        if mtype == SIGNAL:
                            self.signals.append((fields.get(F_INTERFACE), fields.get(F_MEMBER),
                                                 args, time.monotonic()))
                        elif mtype in (METHOD_RETURN, ERROR) and F_REPLY_SERIAL in fields:
                            self.replies[fields[F_REPLY_SERIAL]] = (
                                fields.get(F_ERROR_NAME), args)
                        self.cond.notify_all()
        except Exception as e:  # a parsing bug must show, not hang the test
            self.error = e
        finally:
            with self.cond:
                self.cond.notify_all()

    def call(self, member, signature, *args, path="/org/vigil1",
             interface="org.vigil1.Manager", destination="org.vigil1", timeout=30):
        """Calls a method whose arguments are basic types ('h': a file descriptor, passed
        with the message). Returns (error name or None, reply args or None)."""
        body = _Writer()
        fds = []
        for code, v in zip(signature, args):
            if code == "h":
                fds.append(v)
                v = len(fds) - 1
            body.value(code, v)
        self.serial += 1
        fields = [(F_PATH, path), (F_INTERFACE, interface), (F_MEMBER, member),
                  (F_DESTINATION, destination)]
        if signature:
            fields.append((F_SIGNATURE, signature))
        if fds:
            fields.append((F_UNIX_FDS, len(fds)))
        w = _Writer()
        w.data += b"l" + bytes([METHOD_CALL, 0, 1])
        w.value("u", len(body.data))
        w.value("u", self.serial)
        arr = _Writer()
        arr.data += b"\0" * 16  # so that alignment inside is relative to the message start
        for code, v in fields:
            arr.align(8)
            arr.value("y", code)
            arr.value("g", FIELD_TYPES[code])
            arr.value(FIELD_TYPES[code], v)
        w.value("u", len(arr.data) - 16)
        w.data += arr.data[16:]
        w.align(8)
        msg = bytes(w.data + body.data)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] \
            if fds else []
        self.sock.sendmsg([msg], anc)
        serial = self.serial
        with self.cond:
            self.cond.wait_for(lambda: serial in self.replies or not self.thread.is_alive(),
                               timeout)
            return self.replies.pop(serial, ("(no reply)", None))

    def _daemon_call(self, member, signature, *args):
        err, reply = self.call(member, signature, *args, path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus",
                               destination="org.freedesktop.DBus")
        if err:
            raise ConnectionError(f"{member}: {err} {reply}")

    def hello(self):
        """On a bus daemon (not the private socket): the Hello every client sends first."""
        self._daemon_call("Hello", "")

    def subscribe(self, rule):
        """On a bus daemon: Hello, then AddMatch(rule), so that the daemon routes the
        broadcast signals the rule names to this connection."""
        self.hello()
        self._daemon_call("AddMatch", "s", rule)

    def wait_signal(self, member, cond=lambda args: True, timeout=10):
        """The args of the first signal called member that satisfies cond, waiting for it;
        None after timeout."""
        def find():
            return next((a for (_, m, a, _) in self.signals if m == member and cond(a)), None)
        with self.cond:
            self.cond.wait_for(lambda: find() is not None or not self.thread.is_alive(), timeout)
            return find()

    def members(self, member):
        """The args of every signal called member received so far."""
        with self.cond:
            return [a for (_, m, a, _) in self.signals if m == member]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
