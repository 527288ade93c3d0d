"""Class mode: one teacher, many students, one server. Who may do what (roles), the teacher's passcode and the
loopback rule (access), the class settings every session starts from (settings), what the teacher is presenting
(follow) and predict-then-reveal questions (questions). Plain data kept in the run library's SQLite file; the
stores are passed in, so nothing here imports core.runs (core.runs imports roles to enforce them).
"""
