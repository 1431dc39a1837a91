"""One small module per QEMU architecture: binary, machine and console facts."""
