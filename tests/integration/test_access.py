"""Who may open /dev/muse, and what the kernel refuses."""

from __future__ import annotations

from harness.pytest.testguest import TestGuest

DROP_SYS_ADMIN = "setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin"


def test_open_without_cap_sys_admin_is_eperm(vm: TestGuest) -> None:
    result = vm.run(f"{DROP_SYS_ADMIN} python3 -c \"import errno, os\ntry:\n"
                    " os.open('/dev/muse', os.O_RDWR)\n print('opened')\n"
                    "except OSError as e:\n print(errno.errorcode[e.errno])\"")
    assert result.stdout.strip() == "EPERM", result.describe()


def test_server_without_cap_sys_admin_says_why(vm: TestGuest) -> None:
    proc = vm.spawn(f"exec {DROP_SYS_ADMIN} python3 -m guest.muse serve --type ram "
                    "--size 1MiB --erasesize 64KiB")
    assert proc.wait(120) == 2, proc.text()
    assert "CAP_SYS_ADMIN" in proc.text()
