"""Ray on this machine's loopback address (127.0.0.1) only, never its interface address.

Why a switch is needed (Ray 2.60): every loopback address given to Ray is replaced by the
machine's interface address. `ray.init(_node_ip_address=...)`, `ray start --node-ip-address`
and the host of every `address` pass through `ray._private.services.resolve_ip_for_localhost`,
which turns 127.0.0.1, localhost and ::1 into `services.get_node_ip_address()`; a node
started without an address takes that value too. It is the source address of a UDP socket
aimed at 8.8.8.8 (`node_ip_address_from_perspective`, in `ray._raylet`): the interface of
the default route. There is no node-address environment variable; the only way around it is
`ray_constants.ENABLE_RAY_CLUSTER` (read from `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` when Ray is
imported; True on Linux): False makes `get_node_ip_address()` return 127.0.0.1, and the GCS,
raylets, workers and agents then listen on 127.0.0.1 alone.

The price: with the switch off, `ray start --address` (a second node joining) refuses to
start ("Multi-node Ray clusters are not supported on Windows and OSX"). Nodes started from
Python with Ray's `Node` class are not refused: the fake multi-node provider of
`cluster-local.yaml` adds its nodes that way, and so do the two-node tests.

    bind_to_loopback()          # this process, and the processes it starts from now on
    env = {**os.environ, **LOOPBACK_ENV}   # or only those a subprocess is given
"""

from __future__ import annotations

import os
import sys

LOOPBACK = "127.0.0.1"
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def bind_to_loopback() -> None:
    """Make the Ray of this process, and of the processes it starts, use 127.0.0.1.

    Before Ray is imported the environment variable is enough; after, Ray has read it into
    `ray_constants.ENABLE_RAY_CLUSTER`, which `services.get_node_ip_address` reads at each
    call, so the constant is set too."""
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def is_loopback_address(address: str | None) -> bool:
    """True for `127.0.0.1:6379`, `localhost:6379`, `[::1]:6379` (a cluster on this machine)."""
    if not address or address in ("auto", "local"):
        return False
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS
