"""Signals the engine sends inside the step's transaction; domains subscribe, the engine imports none."""

from blinker import Namespace

_signals = Namespace()

# sender: the ProcessInstance; kwargs: db_session, opened (new HumanTask rows),
# completed (how many human tasks people completed in this step)
instance_stepped = _signals.signal("instance-stepped")
