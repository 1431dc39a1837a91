"""Code that runs inside the guest VM (Debian 12, python3.11, standard library only)."""
