"""Guest-side file system workloads (standard library only).

`python3 -m guest.workloads run|verify`: the power-cut workload and its
checker (powercut.py), over the file model of fsmodel.py.
"""
