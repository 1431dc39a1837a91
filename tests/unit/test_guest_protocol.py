"""Wire ABI of the guest MUSE server: struct layouts and MUSE_INIT strings."""

import errno

import pytest

from guest.muse import protocol as p


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        (p.IN_HEADER, 40),
        (p.OUT_HEADER, 16),
        (p.INIT_IN, 8),
        (p.INIT_OUT, 16),
        (p.ERASE_IN, 16),
        (p.IO_IN, 24),
        (p.IO_OUT, 16),
        (p.ADDR_IN, 8),
        (p.ISBAD_OUT, 8),
        (p.INTERRUPT_IN, 8),
    ],
)
def test_struct_sizes_match_the_kernel_abi(layout, size):
    assert layout.size == size


def test_opcodes_and_flags():
    assert [int(op) for op in p.Opcode] == [36, *range(8192, 8199)]
    assert (p.IO_INBAND, p.IO_OOB_AUTO, p.IO_OOB_PLACE, p.IO_RAW) == (1, 2, 4, 8)
    assert p.opcode_name(8194) == "MUSE_READ"
    assert p.opcode_name(1) == "OPCODE_1"


def test_io_in_field_order():
    raw = p.IO_IN.pack(0x1122334455667788, 4096, p.IO_OOB_AUTO | p.IO_RAW, 0)
    assert raw[:8] == (0x1122334455667788).to_bytes(8, "little")
    assert raw[8:16] == (4096).to_bytes(8, "little")
    assert raw[16:20] == (10).to_bytes(4, "little")


def test_request_buffer_size_follows_the_fuse_rule():
    assert p.request_buffer_size(4096) == 8192
    assert p.request_buffer_size(131072) == 131072 + 80


def test_soft_error_is_a_negative_errno_in_a_u32():
    assert p.errno_to_u32(-errno.EUCLEAN) == (1 << 32) - 117
    assert p.errno_to_u32(errno.EBADMSG) == (1 << 32) - 74
    assert p.errno_to_u32(0) == 0
    assert p.u32_to_errno(p.errno_to_u32(-errno.EUCLEAN)) == -errno.EUCLEAN


def test_init_info_round_trip_and_terminator():
    blob = p.encode_init_info({"NAME": "x", "SIZE": 4096, "PARTSCMDLINE": "1M(a),-(b)"})
    assert blob == b"NAME=x\0SIZE=4096\0PARTSCMDLINE=1M(a),-(b)\0"
    assert p.decode_init_info(blob) == {"NAME": "x", "SIZE": "4096", "PARTSCMDLINE": "1M(a),-(b)"}


def test_init_info_limit():
    with pytest.raises(ValueError, match="4096"):
        p.encode_init_info({"NAME": "n" * 4100})
    assert len(p.encode_init_info({"NAME": "n" * (4096 - 6)})) == 4096


def test_decode_init_info_behaves_like_fuse_kv_parse_one():
    assert p.decode_init_info(b"\0\0 NAME = spaced \0FLAG\0") == {"NAME": "spaced", "FLAG": ""}
    with pytest.raises(ValueError, match="terminated"):
        p.decode_init_info(b"NAME=x")
    with pytest.raises(ValueError, match="zero length"):
        p.decode_init_info(b"=x\0")


def test_pack_request_header():
    raw = p.pack_request(p.Opcode.MUSE_SYNC, 42, b"ab", pid=7)
    length, opcode, unique, _, _, _, pid, _ = p.IN_HEADER.unpack_from(raw)
    assert (length, opcode, unique, pid, len(raw)) == (42, 8198, 42, 7, 42)
