"""Signals the engine sends inside the step's transaction; domains subscribe, the engine imports none."""

from blinker import Namespace

_signals = Namespace()

# sender: the ProcessInstance; kwargs: db_session, waiting_on (names of the user tasks the
# instance now waits on), completed (how many user tasks people completed in this step)
instance_stepped = _signals.signal("instance-stepped")

# sender: the HumanTask that was claimed, given back or transferred; kwargs: db_session
task_reassigned = _signals.signal("task-reassigned")
