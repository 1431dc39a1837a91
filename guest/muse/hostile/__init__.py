"""Hostile server mode: bad replies on purpose, to test the kernel's side.

Off unless asked for (serve --hostile/--preset/--unchecked/--init-*, or the
control socket's {"cmd": "hostile"}). HOSTILE.md has the syntax and what the
v3 kernel is expected to do with each mode.

Modules:
  modes      the reply modes: opcodes, argument, kernel expectation
  rules      MODE[:ARG][,KEY=VALUE] parsing: opcode, trigger, phase
  replies    the byte-exact rewrites of a reply
  engine     picks the due rule per reply, logs and counts firings, dies
  rawinit    raw MUSE_INIT payloads and what the kernel parses from them
  presets    named geometry/INIT setups (serve --preset NAME)
  config     HostileConfig and the raw INIT plan (model, buffers, watcher)
  catalogue  `hostile --list [--json]`
  options    the serve options and the `hostile` command
"""
