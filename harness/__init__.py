"""Host side of the MUSE test harness.

The phases mirror kunit_tool: source -> series -> kconfig -> build give a
kernel; rootfs gives a guest disk; vm boots both and talks to the guest over
the serial console (console.py) and SSH (ssh.py). cli.py and pytest_plugin.py
are the two front ends.
"""
