"""Who is acting: the teacher or a student with a nickname, and the rules the run library enforces for them.

Rules (enforced by core.runs, not only by disabled buttons):
- the teacher (the CLI, a browser on the server's machine, or one that entered the passcode) may do anything;
- a student may stop, resume, rename or delete only the runs they started (same nickname);
- a student may not queue several runs at once (the whole report, a sweep) nor change class settings;
- a student has a quota of queued-or-running runs (default 1), and their runs queue behind the teacher's.
Violations raise PermissionDenied / QuotaExceeded (LabErrors) whose message says what the student can do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ConfigError, LabError

TEACHER_ROLE = "teacher"
STUDENT_ROLE = "student"
ROLES = (TEACHER_ROLE, STUDENT_ROLE)
DEFAULT_QUOTA = 1
MAX_NICKNAME = 24
_NICK = re.compile(r"^[\w .'-]+$")  # letters (any script), digits, space, dot, apostrophe, dash


class PermissionDenied(LabError):
    """A student tried something reserved to the teacher or to another student's run."""


class QuotaExceeded(LabError):
    """A student already has as many queued or running runs as the class allows."""


@dataclass(frozen=True)
class Actor:
    """Who asks: role teacher | student, and a name (a student's nickname; "teacher" for the teacher)."""

    role: str
    name: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")

    @property
    def is_teacher(self) -> bool:
        return self.role == TEACHER_ROLE

    @property
    def label(self) -> str:
        return "the teacher" if self.is_teacher else self.name


TEACHER = Actor(TEACHER_ROLE, "teacher")


def check_nickname(name: str) -> str:
    """A student's nickname, trimmed; ConfigError when it is empty, too long or has odd characters."""
    nick = " ".join(str(name).split())
    if not nick:
        raise ConfigError("a nickname cannot be empty: type a first name or a made-up name")
    if len(nick) > MAX_NICKNAME:
        raise ConfigError(f"a nickname has at most {MAX_NICKNAME} characters, got {len(nick)}: shorten it")
    if not _NICK.match(nick):
        raise ConfigError(f"nickname {nick!r}: use letters, digits, spaces, dots, dashes or apostrophes only")
    if nick.casefold() == TEACHER.name:
        raise ConfigError("'teacher' is reserved: pick another nickname")
    return nick


def student(name: str) -> Actor:
    return Actor(STUDENT_ROLE, check_nickname(name))


def owns(actor: Actor, owner_role: str, owner_name: str) -> bool:
    """Whether `actor` may act on a run started by (owner_role, owner_name): the teacher always may."""
    if actor.is_teacher:
        return True
    return owner_role == STUDENT_ROLE and owner_name == actor.name


def check_owner(actor: Actor, owner_role: str, owner_name: str, what: str, run_id: str) -> None:
    """PermissionDenied unless `actor` may `what` (stop, resume, delete, rename) run `run_id`."""
    if owns(actor, owner_role, owner_name):
        return
    whose = "the teacher's" if owner_role == TEACHER_ROLE else f"{owner_name}'s"
    raise PermissionDenied(f"run {run_id} is {whose}: only its owner or the teacher may {what} it. "
                           f"Start a run of your own to {what} it.")


def require_teacher(actor: Actor, what: str) -> None:
    """PermissionDenied unless the teacher asks for `what` (e.g. "queue the whole report")."""
    if not actor.is_teacher:
        raise PermissionDenied(f"only the teacher may {what}: start one run of your own from a run panel instead, "
                               f"or ask the teacher")


def check_quota(actor: Actor, active_runs: int, quota: int) -> None:
    """QuotaExceeded when a student who already has `active_runs` queued or running runs starts another."""
    if actor.is_teacher or active_runs < quota:
        return
    raise QuotaExceeded(f"{actor.name} already has {active_runs} run(s) queued or running (the class allows "
                        f"{quota} per student): wait for it to finish, or stop it to start another")
