"""How the app tells the teacher from a student: the loopback rule and the teacher passcode (Jupyter's token habit).

- A browser on the server's own machine (a loopback address) is the teacher, unless $CIFAR_LAB_LOCAL_TEACHER=0
  (a server behind a reverse proxy on the same machine: every browser then arrives from loopback).
- Anyone else is a student until they enter the passcode. The passcode is $CIFAR_LAB_PASSCODE, else
  `teacher_passcode` in .streamlit/secrets.toml, else the one kept in <runs folder>/teacher-passcode (mode 0600),
  made at the server's first start and printed in its terminal.
- A browser that entered the passcode keeps a signed token (a cookie) so a reload does not make the teacher a
  student again: `teacher_token` / `token_is_valid`. It is an HMAC of its issue time under the passcode, so
  changing the passcode (or deleting the file) voids every token, and it expires after TOKEN_MAX_AGE_S.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from core.errors import LabError

PASSCODE_FILE = "teacher-passcode"
LOCAL_TEACHER_ENV = "CIFAR_LAB_LOCAL_TEACHER"
PASSCODE_ENV = "CIFAR_LAB_PASSCODE"
TOKEN_COOKIE = "cifar_lab_teacher"
TOKEN_MAX_AGE_S = 12 * 3600  # a school day: tomorrow's class enters the passcode again


@dataclass(frozen=True)
class Passcode:
    code: str
    source: str  # env | secrets | file | new (made just now)
    path: Path | None  # the file that keeps it (file | new)

    @property
    def where(self) -> str:
        return {"env": f"${PASSCODE_ENV}", "secrets": "teacher_passcode in .streamlit/secrets.toml"}.get(
            self.source, str(self.path))


def is_loopback(ip: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else, including text that is no address."""
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


def local_teacher_enabled(environ: dict[str, str] | None = None) -> bool:
    """The loopback rule is on unless $CIFAR_LAB_LOCAL_TEACHER is 0 / false / no / off."""
    value = (os.environ if environ is None else environ).get(LOCAL_TEACHER_ENV, "1")
    return value.strip().lower() not in ("0", "false", "no", "off")


def passcode_path(runs_root: str | Path) -> Path:
    return Path(runs_root) / PASSCODE_FILE


def ensure_passcode(runs_root: str | Path, *, configured: str | None = None, source: str = "env") -> Passcode:
    """The teacher passcode: `configured` (from the environment or secrets) when given, else the one kept in the
    runs folder, made now (8 random words' worth of hex, file mode 0600) when there is none yet."""
    if configured:
        return Passcode(configured, source, None)
    path = passcode_path(runs_root)
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return Passcode(text, "file", path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise LabError(f"cannot read the teacher passcode file {path} ({e.strerror}): fix its permissions, or set "
                       f"${PASSCODE_ENV}") from None
    code = secrets.token_hex(4)  # 8 characters to read aloud / type: guessing is ~4 billion tries
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it at the same moment: use theirs
        return ensure_passcode(runs_root)
    except OSError as e:
        raise LabError(f"cannot write the teacher passcode file {path} ({e.strerror}): set ${PASSCODE_ENV} "
                       f"or choose a writable runs folder") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(code + "\n")
    return Passcode(code, "new", path)


def passcode_matches(entered: str, passcode: Passcode) -> bool:
    """Constant-time comparison (spaces around the typed code are forgiven)."""
    return hmac.compare_digest(entered.strip().encode(), passcode.code.strip().encode())


def is_teacher(*, loopback: bool, unlocked: bool, local_rule: bool) -> bool:
    """The teacher: a browser that entered the passcode, or one on the server's machine while the rule is on."""
    return unlocked or (loopback and local_rule)


def teacher_token(passcode: Passcode, issued_s: int) -> str:
    """A token that proves its holder entered `passcode` at `issued_s` (Unix seconds): "v1.<issued>.<hmac>"."""
    return f"v1.{int(issued_s)}.{_mac(passcode, int(issued_s))}"


def token_is_valid(token: str | None, passcode: Passcode, now_s: float, max_age_s: float = TOKEN_MAX_AGE_S) -> bool:
    """Whether the token was made with this passcode and is younger than max_age_s (and not from the future)."""
    try:
        version, issued, mac = (token or "").split(".")
        age = now_s - int(issued)
    except ValueError:
        return False
    return version == "v1" and -60 <= age < max_age_s and hmac.compare_digest(mac, _mac(passcode, int(issued)))


def _mac(passcode: Passcode, issued_s: int) -> str:
    return hmac.new(passcode.code.strip().encode(), f"teacher:{issued_s}".encode(), "sha256").hexdigest()
