"""Where the BPMN MIWG reference models are: the issue names `../shared/data/bpmn-miwg/Reference`
beside the checkout; a clone elsewhere on this machine (CI's) finds them at /work/shared, or
wherever PAIDAN_MIWG_DIR says. Not found is an error, never an empty set of tests."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import ROOT

_PLACES = [
    os.environ.get("PAIDAN_MIWG_DIR", ""),
    str(ROOT.parent / "shared" / "data" / "bpmn-miwg" / "Reference"),
    "/work/shared/data/bpmn-miwg/Reference",
]


def miwg_folder() -> Path:
    for place in _PLACES:
        if place and len(list(Path(place).glob("*.bpmn"))) >= 20:
            return Path(place)
    raise FileNotFoundError(
        "the BPMN MIWG reference models are not in any of: "
        + ", ".join(p for p in _PLACES if p)
        + " (set PAIDAN_MIWG_DIR)"
    )


MIWG = miwg_folder()
MIWG_MODELS = sorted(MIWG.glob("*.bpmn"))
