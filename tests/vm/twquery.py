#!/usr/bin/env python3
"""Query a Teeworlds 0.7 server for its server info over UDP (stdlib only).

Usage:
    twquery.py HOST PORT [--timeout SECONDS]

Prints one line of JSON (name, map, gametype, players, max_players, version,
...) and exits 0, or prints an error to stderr and exits 1 if no valid answer
arrives before the deadline (default 5 s).  Requests are re-sent every 0.5 s
because UDP may drop packets.

Importable: query(host, port, timeout=5.0) -> dict, raising QueryError.

Wire format (Teeworlds 0.7 "connless" protocol with token handshake; all
multi-byte tokens are big-endian u32, NET_TOKEN_NONE = 0xffffffff):

1. Token request (a control packet, 7-byte header + 513 bytes of data):
     04 00 00 | ff ff ff ff | 05 | <client token:4> | 508 x 00
   byte 0 = NET_PACKETFLAG_CONTROL(1) << 2; bytes 1-2 = ack/num_chunks = 0;
   bytes 3-6 = token = NET_TOKEN_NONE; data = NET_CTRLMSG_TOKEN(5) followed
   by our token, padded so the data is >= NET_TOKENREQUEST_DATASIZE (512)
   (the server ignores shorter requests, an anti-amplification measure).
2. Token reply (control packet):
     04 00 00 | <client token:4> | 05 | <server token:4>
3. Info request (connless packet, 9-byte header):
     21 | <server token:4> | <client token:4> | ff ff ff ff 'gie3' | int(t)
   byte 0 = (NET_PACKETFLAG_CONNLESS(8) << 2) | NET_PACKETVERSION(1);
   t is a serverbrowser token encoded as a Teeworlds variable int.
4. Info reply (connless packet):
     21 | <client token:4> | <server token:4> | ff ff ff ff 'inf3' | int(t)
     | str version | str name | str hostname | str map | str gametype
     | int flags | int skill_level | int num_players | int max_players
     | int num_clients | int max_clients
     | per client: str name, str clan, int country, int score, int type
   Strings are NUL-terminated; ints use the variable-length encoding
   (first byte: bit7 = more, bit6 = sign, bits0-5; then 7 bits per byte).
"""

import json
import os
import socket
import sys
import time

NET_TOKEN_NONE = 0xFFFFFFFF
NET_PACKETFLAG_CONTROL = 1
NET_PACKETFLAG_CONNLESS = 8
NET_PACKETVERSION = 1
NET_CTRLMSG_TOKEN = 5
NET_TOKENREQUEST_DATASIZE = 512
NET_PACKETHEADERSIZE = 7
NET_PACKETHEADERSIZE_CONNLESS = 9

GETINFO = b"\xff\xff\xff\xffgie3"
INFO = b"\xff\xff\xff\xffinf3"

SERVERINFO_FLAG_PASSWORD = 1
SERVERINFO_FLAG_TIMESCORE = 2

RETRY_INTERVAL = 0.5


class QueryError(Exception):
    """Raised when no valid server info could be obtained."""


class _Malformed(Exception):
    pass


def pack_int(value):
    """Encode an int with Teeworlds' CVariableInt scheme."""
    out = bytearray()
    sign = 0
    if value < 0:
        sign = 0x40
        value = ~value
    first = sign | (value & 0x3F)
    value >>= 6
    if value:
        first |= 0x80
    out.append(first)
    while value:
        byte = value & 0x7F
        value >>= 7
        if value:
            byte |= 0x80
        out.append(byte)
    return bytes(out)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def int(self):
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise _Malformed("truncated int")
        byte = data[pos]
        sign = (byte >> 6) & 1
        value = byte & 0x3F
        shift = 6
        pos += 1
        while byte & 0x80:
            if pos >= len(data) or shift > 27:
                raise _Malformed("bad int")
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            shift += 7
            pos += 1
        self.pos = pos
        return ~value if sign else value

    def str(self):
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise _Malformed("unterminated string")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        return raw.decode("utf-8", errors="replace")

    def at_end(self):
        return self.pos >= len(self.data)


def _token_request(client_token):
    header = bytes([(NET_PACKETFLAG_CONTROL << 2) & 0xFC, 0, 0])
    header += NET_TOKEN_NONE.to_bytes(4, "big")
    data = bytes([NET_CTRLMSG_TOKEN]) + client_token.to_bytes(4, "big")
    data += bytes(NET_TOKENREQUEST_DATASIZE - 4)
    return header + data


def _info_request(server_token, client_token, browser_token):
    header = bytes([((NET_PACKETFLAG_CONNLESS << 2) & 0xFC)
                    | (NET_PACKETVERSION & 0x03)])
    header += server_token.to_bytes(4, "big")
    header += client_token.to_bytes(4, "big")
    return header + GETINFO + pack_int(browser_token)


def _parse_token_reply(pkt, client_token):
    """Return the server token from a NET_CTRLMSG_TOKEN reply, else None."""
    if len(pkt) < NET_PACKETHEADERSIZE + 5:
        return None
    flags = (pkt[0] & 0xFC) >> 2
    if flags & NET_PACKETFLAG_CONNLESS or not flags & NET_PACKETFLAG_CONTROL:
        return None
    if int.from_bytes(pkt[3:7], "big") != client_token:
        return None
    if pkt[7] != NET_CTRLMSG_TOKEN:
        return None
    token = int.from_bytes(pkt[8:12], "big")
    return None if token == NET_TOKEN_NONE else token


def _parse_info_reply(pkt, client_token, browser_token):
    """Return the info dict from an 'inf3' connless reply, else None."""
    if len(pkt) < NET_PACKETHEADERSIZE_CONNLESS + len(INFO):
        return None
    flags = (pkt[0] & 0xFC) >> 2
    if not flags & NET_PACKETFLAG_CONNLESS or (pkt[0] & 0x03) != NET_PACKETVERSION:
        return None
    if int.from_bytes(pkt[1:5], "big") != client_token:
        return None
    payload = pkt[NET_PACKETHEADERSIZE_CONNLESS:]
    if not payload.startswith(INFO):
        return None
    r = _Reader(payload[len(INFO):])
    try:
        if r.int() != browser_token:
            return None
        info = {
            "version": r.str(),
            "name": r.str(),
            "hostname": r.str(),
            "map": r.str(),
            "gametype": r.str(),
        }
        srv_flags = r.int()
        info["password"] = bool(srv_flags & SERVERINFO_FLAG_PASSWORD)
        info["skill_level"] = r.int()
        info["players"] = r.int()
        info["max_players"] = r.int()
        info["clients"] = r.int()
        info["max_clients"] = r.int()
    except _Malformed:
        return None
    # Per-client entries are informational; tolerate truncation.
    clients = []
    try:
        while not r.at_end() and len(clients) < info["clients"]:
            clients.append({
                "name": r.str(),
                "clan": r.str(),
                "country": r.int(),
                "score": r.int(),
                "spectator": bool(r.int() & 1),
            })
    except _Malformed:
        pass
    info["client_list"] = clients
    return info


def _random_u32():
    while True:
        token = int.from_bytes(os.urandom(4), "big")
        if token != NET_TOKEN_NONE:
            return token


def query(host, port, timeout=5.0):
    """Ask the Teeworlds 0.7 server at host:port for its info.

    Returns a dict; raises QueryError if no valid reply arrives within
    `timeout` seconds (requests are re-sent every 0.5 s).
    """
    port = int(port)
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise QueryError("cannot resolve %s: %s" % (host, exc)) from exc
    family, _, _, _, addr = infos[0]

    client_token = _random_u32()
    browser_token = int.from_bytes(os.urandom(1), "big")
    server_token = None
    deadline = time.monotonic() + float(timeout)
    next_send = 0.0
    refused = False

    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        # connect() filters datagrams to the server's address and makes an
        # ICMP port-unreachable surface as ConnectionRefusedError.
        sock.connect(addr)
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_send:
                if server_token is None:
                    pkt = _token_request(client_token)
                else:
                    pkt = _info_request(server_token, client_token,
                                        browser_token)
                try:
                    sock.send(pkt)
                except ConnectionRefusedError:
                    refused = True
                except OSError as exc:
                    raise QueryError("send to %s:%d failed: %s"
                                     % (host, port, exc)) from exc
                next_send = now + RETRY_INTERVAL
            sock.settimeout(max(0.001, min(next_send, deadline) - now))
            try:
                pkt = sock.recv(2048)
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                refused = True
                continue
            except OSError as exc:
                raise QueryError("receive from %s:%d failed: %s"
                                 % (host, port, exc)) from exc
            if server_token is None:
                token = _parse_token_reply(pkt, client_token)
                if token is not None:
                    server_token = token
                    next_send = 0.0  # send the info request right away
                continue
            info = _parse_info_reply(pkt, client_token, browser_token)
            if info is not None:
                return info
            # a fresh token reply (e.g. server restarted) replaces the old one
            token = _parse_token_reply(pkt, client_token)
            if token is not None and token != server_token:
                server_token = token
                next_send = 0.0

    stage = "token" if server_token is None else "server info"
    why = " (port unreachable)" if refused else ""
    raise QueryError("no %s reply from %s:%d within %gs%s"
                     % (stage, host, port, float(timeout), why))


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        description="Query a Teeworlds 0.7 server's info over UDP.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for an answer (default 5)")
    args = parser.parse_args(argv)
    try:
        info = query(args.host, args.port, args.timeout)
    except QueryError as exc:
        print("twquery: error: %s" % exc, file=sys.stderr)
        return 1
    summary = {
        "name": info["name"],
        "map": info["map"],
        "gametype": info["gametype"],
        "players": info["players"],
        "max_players": info["max_players"],
        "clients": info["clients"],
        "max_clients": info["max_clients"],
        "version": info["version"],
        "password": info["password"],
    }
    print(json.dumps(summary, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
