"""`python3 -m guest.muse hostile --list [--json]`: every mode and preset.

The JSON form is what tests iterate over:
  {"modes":   [{"name", "usage", "arg", "arg_required", "ops", "after",
                "description", "kernel"}, ...],
   "presets": [{"name", "description", "args", "expect", "kernel"}, ...],
   "keys":    {KEY: description} of the rule options,
   "init_options": {FLAG: description} of the raw INIT options}
"""

from __future__ import annotations

import json

from ..protocol import opcode_name
from .modes import MODES
from .presets import PRESETS

RULE_KEYS = {
    "op": "opcodes: init, read, write, erase, isbad, markbad, sync, any, joined with '+'",
    "nth": "start at the N-th matching request (default 1, or EVERY)",
    "every": "then fire on every E-th matching request",
    "prob": "fire with probability P per matching request, drawn from --seed",
    "count": "fire at most C times (default 1; unlimited with every or prob)",
    "after": "init: count from the INIT reply; ready: from the MTDs' announcement",
    "follow": "1: send the normal reply after the hostile message",
}

INIT_OPTIONS = {
    "--unchecked": "skip both tiers of geometry validation; odd geometry gets the trivial model",
    "--init-param KEY=VALUE": "add or override a MUSE_INIT key verbatim (KEY alone: no '=')",
    "--init-drop KEY": "leave a key out of MUSE_INIT",
    "--init-raw HEX|@FILE": "these bytes are the MUSE_INIT info, verbatim",
    "--init-version MAJOR.MINOR": "reply this FUSE version",
    "--init-max-io READ,WRITE": "raw max_read/max_write (u32)",
}


def catalogue() -> dict[str, object]:
    return {
        "modes": [
            {
                "name": mode.name,
                "usage": mode.usage,
                "arg": mode.arg or None,
                "arg_required": mode.arg_required,
                "ops": sorted(opcode_name(op) for op in mode.ops),
                "after": mode.after,
                "description": mode.help,
                "kernel": mode.kernel,
            }
            for mode in MODES.values()
        ],
        "presets": [
            {
                "name": preset.name,
                "description": preset.help,
                "args": list(preset.args),
                "expect": preset.expect,
                "kernel": preset.kernel,
            }
            for preset in PRESETS.values()
        ],
        "keys": RULE_KEYS,
        "init_options": INIT_OPTIONS,
    }


def render(as_json: bool) -> str:
    if as_json:
        return json.dumps(catalogue(), indent=1)
    width = max(len(mode.usage) for mode in MODES.values())
    lines = [f"mode   {mode.usage:{width}}  {mode.help}" for mode in MODES.values()]
    width = max(len(name) for name in PRESETS)
    lines += [
        f"preset {preset.name:{width}}  [{preset.expect}] {preset.help}"
        for preset in PRESETS.values()
    ]
    return "\n".join(lines)
