"""How the app tells the teacher from a student: the loopback rule and the teacher passcode (Jupyter's token habit).

- A browser on the server's own machine (a loopback address) is the teacher, unless $CIFAR_LAB_LOCAL_TEACHER=0
  (a server behind a reverse proxy on the same machine: every browser then arrives from loopback).
- Anyone else is a student until they enter the passcode. `resolve_passcode` decides which one, for the server
  and for `python -m core class show` alike: $CIFAR_LAB_PASSCODE, else `teacher_passcode` in Streamlit's secrets
  files (~/.streamlit/secrets.toml, then ./.streamlit/secrets.toml, the later winning), else the one kept in
  <runs folder>/teacher-passcode (mode 0600), made at the server's first start and printed in its terminal.
- A passcode must withstand guessing at the rate core.classroom.attempts allows (a handful of wrong tries per
  minute per browser and per address, then an exponential wait): `passcode_problem` refuses one shorter than
  MIN_LENGTH characters, of fewer than MIN_DISTINCT different characters, a well-known one (or a straight run
  such as 23456789 or abcdefgh), or one whose
  estimated strength (length x log2 of the character classes it uses) is under MIN_BITS bits. A refused passcode
  unlocks nothing: only the server's own machine is the teacher until it is replaced.
- A browser that entered the passcode keeps a signed token (a cookie) so a reload does not make the teacher a
  student again: `teacher_token` / `token_is_valid`. It is an HMAC of its issue time under the passcode, so
  changing the passcode (or deleting the file) voids every token, and it expires after TOKEN_MAX_AGE_S.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import LabError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the `toml` package Streamlit itself reads secrets.toml with
    tomllib = None

PASSCODE_FILE = "teacher-passcode"
LOCAL_TEACHER_ENV = "CIFAR_LAB_LOCAL_TEACHER"
PASSCODE_ENV = "CIFAR_LAB_PASSCODE"
TOKEN_COOKIE = "cifar_lab_teacher"
TOKEN_MAX_AGE_S = 12 * 3600  # a school day: tomorrow's class enters the passcode again
SECRETS_KEY = "teacher_passcode"
SECRETS_FILES = ("~/.streamlit/secrets.toml", ".streamlit/secrets.toml")  # Streamlit's default `secrets.files`
MIN_LENGTH = 8
MIN_DISTINCT = 5
MIN_BITS = 32  # at 5 guesses a minute, 2**32 guesses take ~1,600 years from one address (and from 30, ~55)
COMMON = frozenset({"password", "passcode", "passwort", "teacher", "qwerty", "qwertyuiop", "azerty", "letmein",
                    "welcome", "iloveyou", "abc123", "abcdefgh", "12345678", "123456789", "1234567890",
                    "87654321", "11111111", "00000000", "cifarlab", "cifar-lab", "classroom", "sunshine"})


@dataclass(frozen=True)
class Passcode:
    code: str
    source: str  # env | secrets | file | new (made just now)
    path: Path | None  # the file that keeps it (secrets | file | new)

    @property
    def where(self) -> str:
        if self.source == "env":
            return f"${PASSCODE_ENV}"
        if self.source == "secrets":
            return f"{SECRETS_KEY} in {self.path}"
        return str(self.path)

    @property
    def problem(self) -> str:
        """Why this passcode is refused ("" when it is strong enough): see passcode_problem."""
        return passcode_problem(self.code)


def passcode_problem(code: str) -> str:
    """"" for a passcode strong enough for class, else why not and what to do (module docstring: the rule)."""
    code = code.strip()
    fix = f"set a longer random one (${PASSCODE_ENV}, or {SECRETS_KEY} in .streamlit/secrets.toml)"
    if len(code) < MIN_LENGTH:
        return f"the teacher passcode has {len(code)} characters, fewer than {MIN_LENGTH}: {fix}"
    if len(set(code)) < MIN_DISTINCT:
        return f"the teacher passcode uses fewer than {MIN_DISTINCT} different characters: {fix}"
    steps = {ord(b) - ord(a) for a, b in zip(code, code[1:])}
    if code.lower() in COMMON or code.lower().rstrip(string.digits + string.punctuation) in COMMON or \
            steps in ({1}, {-1}):
        return f"the teacher passcode is a well-known one, the first any student would try: {fix}"
    if strength_bits(code) < MIN_BITS:
        return (f"the teacher passcode is too easy to guess (about {strength_bits(code):.0f} bits, at least "
                f"{MIN_BITS} needed: mix letters, digits and signs, or make it longer): {fix}")
    return ""


def strength_bits(code: str) -> float:
    """A rough strength: length x log2 of the size of the character classes used (digits 10, lower and upper
    letters 26 each, anything else 33)."""
    classes = ((string.digits, 10), (string.ascii_lowercase, 26), (string.ascii_uppercase, 26))
    pool = sum(size for chars, size in classes if any(c in chars for c in code))
    pool += 33 if any(not any(c in chars for chars, _ in classes) for c in code) else 0
    return len(code) * math.log2(pool) if pool else 0.0


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


def configured_passcode(environ: Mapping[str, str] | None = None,
                        secrets_files: Sequence[str | Path] = SECRETS_FILES) -> Passcode | None:
    """The passcode set by $CIFAR_LAB_PASSCODE, else by teacher_passcode in the secrets files (read as Streamlit
    does: each in turn, a later file winning; relative paths from the current folder); None when neither sets it."""
    env = (os.environ if environ is None else environ).get(PASSCODE_ENV, "")
    if env.strip():
        return Passcode(env, "env", None)
    found = None
    for name in secrets_files:
        path = Path(name).expanduser()
        try:
            value = _read_toml(path).get(SECRETS_KEY)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:  # TOMLDecodeError and toml's errors are ValueErrors
            raise LabError(f"cannot read the secrets file {path} ({e}): fix it, or set ${PASSCODE_ENV}") from None
        if value is not None and str(value).strip():
            found = Passcode(str(value), "secrets", path.resolve())
    return found


def _read_toml(path: Path) -> dict:
    if tomllib is not None:
        with open(path, "rb") as f:
            return tomllib.load(f)
    import toml

    return toml.loads(path.read_text(encoding="utf-8"))


def resolve_passcode(runs_root: str | Path, *, environ: Mapping[str, str] | None = None,
                     secrets_files: Sequence[str | Path] = SECRETS_FILES, create: bool = True) -> Passcode | None:
    """THE teacher passcode, for the server and `python -m core class show` alike: the configured one
    (configured_passcode), else the runs folder's own - made now when `create` (the server), else None when
    there is none yet (the CLI says the server will make one)."""
    configured = configured_passcode(environ, secrets_files)
    if configured is not None:
        return configured
    return ensure_passcode(runs_root) if create else stored_passcode(runs_root)


def stored_passcode(runs_root: str | Path) -> Passcode | None:
    """The passcode kept in the runs folder, or None when there is none (yet)."""
    path = passcode_path(runs_root)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LabError(f"cannot read the teacher passcode file {path} ({e.strerror}): fix its permissions, or set "
                       f"${PASSCODE_ENV}") from None
    return Passcode(text, "file", path) if text else None


def new_code() -> str:
    """10 random hex digits (40 bits), drawn again in the rare case the strength rule would refuse them."""
    while True:
        code = secrets.token_hex(5)
        if not passcode_problem(code):
            return code


def ensure_passcode(runs_root: str | Path, *, configured: str | None = None, source: str = "env") -> Passcode:
    """The teacher passcode: `configured` when given, else the one kept in the runs folder, made now (new_code,
    file mode 0600) when there is none yet."""
    if configured:
        return Passcode(configured, source, None)
    stored = stored_passcode(runs_root)
    if stored is not None:
        return stored
    path = passcode_path(runs_root)
    code = new_code()
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
    """Constant-time comparison (spaces around the typed code are forgiven); a refused passcode matches nothing."""
    same = hmac.compare_digest(entered.strip().encode(), passcode.code.strip().encode())
    return same and not passcode.problem


def is_teacher(*, loopback: bool, unlocked: bool, local_rule: bool) -> bool:
    """The teacher: a browser that entered the passcode, or one on the server's machine while the rule is on."""
    return unlocked or (loopback and local_rule)


def teacher_token(passcode: Passcode, issued_s: int) -> str:
    """A token that proves its holder entered `passcode` at `issued_s` (Unix seconds): "v1.<issued>.<hmac>"."""
    return f"v1.{int(issued_s)}.{_mac(passcode, int(issued_s))}"


def token_is_valid(token: str | None, passcode: Passcode, now_s: float, max_age_s: float = TOKEN_MAX_AGE_S) -> bool:
    """Whether the token was made with this passcode and is younger than max_age_s (and not from the future);
    none is valid under a refused passcode."""
    if passcode.problem:
        return False
    try:
        version, issued, mac = (token or "").split(".")
        age = now_s - int(issued)
    except ValueError:
        return False
    return version == "v1" and -60 <= age < max_age_s and hmac.compare_digest(mac, _mac(passcode, int(issued)))


def _mac(passcode: Passcode, issued_s: int) -> str:
    return hmac.new(passcode.code.strip().encode(), f"teacher:{issued_s}".encode(), "sha256").hexdigest()
