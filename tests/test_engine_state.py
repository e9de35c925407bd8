"""Saved state: its format is recorded, and a state of another format is never misread."""

import json
import re

import pytest

from app.engine.serializer import STATE_FORMAT
from app.errors import ProcessError
from tests.flows import Flow


def test_every_instance_records_the_format_it_was_saved_in(db_session):
    flow = Flow(db_session, "alice", "it_service")
    assert flow.instance.state_format == STATE_FORMAT
    assert STATE_FORMAT.startswith("spiff-") and "/paidan-" in STATE_FORMAT
    state = json.loads(flow.instance.state)
    assert "spec" not in state and "subprocess_specs" not in state, "specs live per version"


def test_a_state_of_another_format_is_refused_and_left_untouched(db_session):
    flow = Flow(db_session, "alice", "it_service")
    instance = flow.instance
    instance.state_format = "spiff-1.4/paidan-0"
    db_session.commit()
    before = (instance.state, instance.version)
    with pytest.raises(ProcessError, match=re.escape("spiff-1.4/paidan-0")):
        flow.do(
            "task_triage",
            "desk",
            category="network",
            priority="P1",
            region="beijing",
            resolution="forward",
            triage_note="",
        )
    db_session.rollback()
    db_session.refresh(instance)
    assert (instance.state, instance.version) == before
