"""A single-port RAM: one access per cycle (a read or a byte-masked write), read data registered.

On an iCE40 UltraPlus (an Amaranth :class:`~amaranth.vendor.SiliconBluePlatform` whose device is
in :data:`SPRAM_BLOCKS`) it is built from the device's ``SB_SPRAM256KA`` blocks (16K × 16 bits,
256 kbit each; the UP5K has four, 128 KiB). Elsewhere (simulation, other FPGAs, iCE40 devices
without SPRAM) it is a :class:`~amaranth.lib.memory.Memory` with one byte-granular write port and
one read port that share the address, which behaves the same.

Timing, per rising edge of the ``sync`` clock:

* ``en & ~we``: a read; ``rdata`` shows the word at ``addr`` from the next cycle on;
* ``en & we``: the bytes whose ``be`` bit is set are written at ``addr``; ``rdata`` is undefined
  from the next cycle on (``SB_SPRAM256KA`` drives X; the behavioural model shows the word's old
  value), until the next read;
* ``~en``: nothing happens and ``rdata`` keeps its value.

SPRAM mapping (checked against yosys's model of the primitive, ``share/ice40/cells_sim.v``, by
``tests/test_axiram.py``): the word is cut into 16-bit columns (the last one padded), each column
is one block per 16K words of depth. ``addr[:14]`` goes to every block's ``ADDRESS``; the higher
address bits pick the row of blocks whose ``CHIPSELECT`` is raised, and, registered on the
access, which row's ``DATAOUT`` is ``rdata``. ``MASKWREN`` has one enable per nibble: byte ``2c``
of the word drives nibbles 0–1 of column ``c``, byte ``2c + 1`` nibbles 2–3. ``STANDBY`` and
``SLEEP`` are 0 and ``POWEROFF`` (active low) is 1. A 32-bit word of up to 32K words takes 2 × 2
blocks, a 64-bit word of up to 16K words 4 × 1.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from amaranth.vendor import SiliconBluePlatform

__all__ = ["SPRAM_BLOCKS", "SPRAM_DEPTH", "SPRAM_WIDTH", "SinglePortRam", "spram_blocks",
           "spram_tiles"]

#: Data bits of one ``SB_SPRAM256KA``.
SPRAM_WIDTH = 16
#: Words of one ``SB_SPRAM256KA``.
SPRAM_DEPTH = 16384
#: ``SB_SPRAM256KA`` blocks per device (Lattice's iCE40 UltraPlus data sheet), keyed by the
#: platform's ``device``. Other iCE40 devices have none.
SPRAM_BLOCKS: dict[str, int] = {"iCE40UP5K": 4}


def spram_tiles(width: int, depth: int) -> tuple[int, int]:
    """``(columns, rows)`` of ``SB_SPRAM256KA`` blocks a ``width`` × ``depth`` RAM takes."""
    return -(-width // SPRAM_WIDTH), -(-depth // SPRAM_DEPTH)


def spram_blocks(platform) -> int:
    """``SB_SPRAM256KA`` blocks on ``platform``'s device: 0 unless it is an iCE40 UltraPlus."""
    if isinstance(platform, SiliconBluePlatform):
        return SPRAM_BLOCKS.get(platform.device, 0)
    return 0


class SinglePortRam(wiring.Component):
    """``depth`` words of ``width`` bits (a multiple of 8), one access per cycle.

    Members
    -------
    addr : In(ceil_log2(depth))
        Word address.
    en : In(1, init=1)
        An access this cycle (a read unless ``we``).
    we : In(1)
        The access is a write of the bytes selected by ``be``.
    be : In(width // 8)
        Byte write enables (bit ``i``: bits ``8i`` to ``8i + 7``).
    wdata : In(width)
    rdata : Out(width)
        The word read by the last read, from the cycle after it (see the module docstring).
    """

    def __init__(self, width: int, depth: int):
        if width <= 0 or width % 8:
            raise ValueError(f"width = {width!r} is not a positive multiple of 8")
        if depth <= 0:
            raise ValueError(f"depth = {depth!r} is not positive")
        self._width = width
        self._depth = depth
        super().__init__({
            "addr": In(max(1, ceil_log2(depth))),
            "en": In(1, init=1),
            "we": In(1),
            "be": In(width // 8),
            "wdata": In(width),
            "rdata": Out(width),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    def uses_spram(self, platform) -> bool:
        """Whether :meth:`elaborate` builds this RAM from ``SB_SPRAM256KA`` on ``platform``."""
        return spram_blocks(platform) > 0

    def elaborate(self, platform) -> Module:
        if self.uses_spram(platform):
            return self._elaborate_spram(platform)
        m = Module()
        mem = Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port(granularity=8)
        rp = mem.read_port()  # not transparent: a write cycle reads the old word
        m.submodules.mem = mem
        m.d.comb += [
            wp.addr.eq(self.addr), wp.data.eq(self.wdata),
            wp.en.eq(self.be & (self.en & self.we).replicate(len(self.be))),
            rp.addr.eq(self.addr), rp.en.eq(self.en),
            self.rdata.eq(rp.data),
        ]
        return m

    def _elaborate_spram(self, platform) -> Module:
        cols, rows = spram_tiles(self._width, self._depth)
        available = spram_blocks(platform)
        if cols * rows > available:
            raise ValueError(f"a {self._width}-bit × {self._depth} RAM needs {cols} × {rows} "
                             f"SB_SPRAM256KA, {platform.device} has {available}")
        m = Module()
        low_bits = ceil_log2(SPRAM_DEPTH)
        address = Signal(low_bits)
        m.d.comb += address.eq(self.addr[:low_bits])
        row = self.addr[low_bits:]
        row_q = Signal(range(rows))  # the row of the last access: whose DATAOUT is rdata
        if rows > 1:
            with m.If(self.en):
                m.d.sync += row_q.eq(row)
        padded = Cat(self.wdata, Const(0, cols * SPRAM_WIDTH - self._width))
        be = Cat(self.be, Const(0, 2 * cols - len(self.be)))
        outs = []
        for r in range(rows):
            select = Signal(name=f"cs_{r}")
            m.d.comb += select.eq(self.en & (row == r) if rows > 1 else self.en)
            words = []
            for c in range(cols):
                datain = Signal(SPRAM_WIDTH, name=f"datain_{r}_{c}")
                maskwren = Signal(4, name=f"maskwren_{r}_{c}")
                dataout = Signal(SPRAM_WIDTH, name=f"dataout_{r}_{c}")
                m.d.comb += [
                    datain.eq(padded[SPRAM_WIDTH * c:SPRAM_WIDTH * (c + 1)]),
                    maskwren.eq(Cat(be[2 * c], be[2 * c], be[2 * c + 1], be[2 * c + 1])),
                ]
                m.submodules[f"spram_{r}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=address, i_DATAIN=datain, i_MASKWREN=maskwren, i_WREN=self.we,
                    i_CHIPSELECT=select, i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                    o_DATAOUT=dataout)
                words.append(dataout)
            outs.append(Cat(*words)[:self._width])
        m.d.comb += self.rdata.eq(outs[0] if rows == 1 else Array(outs)[row_q])
        return m
