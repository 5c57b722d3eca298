"""The network boundary of multi-worker training.

TensorFlow's gRPC server (MultiWorkerMirroredStrategy's collectives and coordination service)
listens on every interface of its host: the bind address is hard-coded as `0.0.0.0:<port>` in
TensorFlow (core/distributed_runtime/rpc/grpc_server_lib.cc); TF_CONFIG's host names only where
the peers connect. The service is unauthenticated. So the boundary is enforced around it:

- Local workers (`flows.multiworker --workers N`, the train stage with training.workers > 1):
  the launcher runs the whole cluster inside a private network namespace whose only interface
  is loopback (`enter_private_network`), so their ports exist nowhere on the host's network.
  As root this takes CAP_SYS_ADMIN, which root has; otherwise an unprivileged user namespace
  (`kernel.unprivileged_userns_clone`, on by default in most distributions). Where neither
  works the launcher refuses, naming FORECAST_MULTIWORKER_NETWORK=host, the explicit opt-out.
- Workers on several hosts (`--worker-index I --cluster ...` on each): the ports must be open to
  the peers, so each worker checks that every cluster address is private (loopback, RFC 1918,
  link-local, IPv6 unique-local: `check_private_cluster`) and refuses a public one unless
  `--allow-public-network`. Keep the hosts on a private network or firewall the port to the
  peers (README "Several hosts").
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import ipaddress
import os
import socket
import struct

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
NETWORK_ENV = "FORECAST_MULTIWORKER_NETWORK"  # "private" (default) | "host"


class NoPrivateNetwork(OSError):
    """This process cannot get a network namespace of its own."""


def network_mode() -> str:
    mode = os.environ.get(NETWORK_ENV, "private")
    if mode not in ("private", "host"):
        raise ValueError(f"{NETWORK_ENV} must be 'private' or 'host', got {mode!r}")
    return mode


def _link_up(name: str) -> None:
    """`ip link set NAME up`, without iproute2: the interface flags through ioctl."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, packed))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))


def enter_private_network() -> None:
    """Move this process into a new network namespace with only loopback, up.

    Call it while the process has one thread (unshare of a user namespace needs that), before
    starting the workers: they inherit the namespace. Raises NoPrivateNetwork with the reason.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise NoPrivateNetwork(err, f"unshare(network namespace): {os.strerror(err)}")
    if flags & CLONE_NEWUSER:  # map ourselves to ourselves: files keep their owner
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    try:
        _link_up("lo")
    except OSError as e:
        raise NoPrivateNetwork(e.errno or errno.EPERM, f"bringing up loopback: {e}") from None


def private_address(host: str) -> bool:
    """Every address `host` resolves to is loopback, private, or link-local."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return bool(addresses) and all(
        a.is_loopback or a.is_private or a.is_link_local for a in addresses
    )


def check_private_cluster(cluster: list[str]) -> None:
    """ValueError naming the first worker address that is not on a private network."""
    for address in cluster:
        host = address.rsplit(":", 1)[0].strip("[]")
        if not private_address(host):
            raise ValueError(
                f"cluster address {address!r} is not a private-network address: TensorFlow's "
                "worker port listens on every interface, unauthenticated, so the workers must "
                "talk over a private network (loopback, 10/8, 172.16/12, 192.168/16, link-local, "
                "fc00::/7); pass --allow-public-network if a firewall restricts the port to the "
                "peers"
            )
