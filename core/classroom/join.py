"""How students join: the address of this server on the local network, for the teacher to show (with a QR code).

Without any network access: the LAN address is the one the operating system would send from towards a private
address (a UDP socket's connect() sends nothing), else the host name's address, else 127.0.0.1. What the teacher
configured wins: $CIFAR_LAB_JOIN_URL (a whole URL, e.g. behind a reverse proxy), then Streamlit's
browser.serverAddress when set, then server.address when the server listens on one specific address.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

JOIN_URL_ENV = "CIFAR_LAB_JOIN_URL"
PROBE_ADDRESS = ("10.254.254.254", 1)  # private and unlikely to exist: only the route is looked up
WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class JoinAddress:
    url: str  # what students type or scan
    source: str  # env | browser.serverAddress | server.address | lan
    warning: str = ""  # why students may not reach it, and what to do ("" when they should)


def udp_probe() -> str:
    """The local address of the route towards PROBE_ADDRESS (raises OSError when there is no route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(PROBE_ADDRESS)
        return str(s.getsockname()[0])


def host_address() -> str:
    return socket.gethostbyname(socket.gethostname())


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def lan_ip(probes: tuple[Callable[[], str], ...] = (udp_probe, host_address)) -> str:
    """The first non-loopback, non-wildcard address a probe finds; 127.0.0.1 when none does."""
    for probe in probes:
        try:
            ip = probe()
        except OSError:
            continue
        if ip and ip not in WILDCARDS and not _loopback(ip):
            return ip
    return "127.0.0.1"


def _url(host: str, port: int, base_path: str) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    path = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return f"http://{host}:{port}{path}"


def join_address(*, port: int, server_address: str | None = None, bind_address: str | None = None,
                 base_path: str = "", environ: Mapping[str, str] | None = None,
                 lan: Callable[[], str] = lan_ip) -> JoinAddress:
    """The address students open. `server_address`: Streamlit's browser.serverAddress when set by hand (None
    otherwise); `bind_address`: server.address; `port`: server.port; `base_path`: server.baseUrlPath."""
    env = (os.environ if environ is None else environ).get(JOIN_URL_ENV, "").strip()
    if env:
        return JoinAddress(env, "env")
    bind = (bind_address or "").strip()
    if server_address and server_address.strip():
        host, source = server_address.strip(), "browser.serverAddress"
    elif bind not in WILDCARDS:
        host, source = bind, "server.address"
    else:
        host, source = lan(), "lan"
    warning = ""
    if _loopback(bind):
        warning = (f"the server listens on {bind} only: students' devices cannot reach it. Restart it with "
                   f"`streamlit run app.py --server.address 0.0.0.0`")
    elif _loopback(host):
        warning = (f"no network address found for this machine: students cannot open {host}. Connect it to the "
                   f"class network, or set ${JOIN_URL_ENV} to the address they should open")
    return JoinAddress(_url(host, port, base_path), source, warning)
