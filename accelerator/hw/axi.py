"""The AXI4 master interface of the accelerator's memory port, as a flat wiring signature.

The members are named after the AXI4 signals themselves (``awaddr``, ``wdata``, ``rready``, …) at
the top level of the signature, not nested per channel: a component member ``m_axi`` of this
signature converts to Verilog ports ``m_axi__awaddr``, ``m_axi__awvalid``, …, which is what
cocotbext-axi binds with ``AxiBus.from_prefix(dut, "m_axi", bus_separator="__")`` and what an
FPGA vendor's interface inference recognises after a rename of the separator.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BURST_INCR", "RESP_OKAY", "AXI4Signature", "AxiSlice", "connect_part"]

#: AxBURST encoding of an incrementing burst.
BURST_INCR = 0b01
#: xRESP encoding of a successful transfer.
RESP_OKAY = 0b00


class AXI4Signature(wiring.Signature):
    """An AXI4 master port (``Out`` = driven by the master), one flat member per AXI signal.

    Parameters
    ----------
    addr_width, data_width, id_width : int
        Widths of AxADDR, xDATA (32…1024, a power of two) and the ID signals.
    read, write : bool
        Which half to include: the read channels (AR, R), the write channels (AW, W, B) or both.
        A DMA reader and writer each drive one half; the memory port of the accelerator has both.

    Members (per included channel; ``xVALID``/``xREADY`` handshakes as in the AXI4 spec)
    -------
    aw* : awid, awaddr, awlen (8), awsize (3), awburst (2), awlock (1), awcache (4), awprot (3),
        awvalid: Out; awready: In.
    w* : wdata, wstrb (data_width/8), wlast, wvalid: Out; wready: In.
    b* : bid, bresp (2), bvalid: In; bready: Out.
    ar* : like aw*.
    r* : rid, rdata, rresp (2), rlast, rvalid: In; rready: Out.

    AxLOCK/AxCACHE/AxPROT are optional for cocotbext-axi's models but most interconnects want
    them; the DMA drives them with constants (normal access, non-cacheable bufferable, data,
    secure (AxPROT[1] = 0), unprivileged; docs/interface.md).
    """

    def __init__(self, addr_width: int = 32, data_width: int = 64, id_width: int = 1, *,
                 read: bool = True, write: bool = True):
        if data_width < 8 or data_width & (data_width - 1):
            raise ValueError(f"AXI4 data width must be a power of two ≥ 8, not {data_width}")
        if addr_width < 12:
            raise ValueError(f"AXI4 address width must be at least 12, not {addr_width}")
        if id_width < 1:
            raise ValueError(f"AXI4 ID width must be at least 1, not {id_width}")
        if not (read or write):
            raise ValueError("an AXI4 signature needs the read or the write half, or both")
        self._params = (addr_width, data_width, id_width, read, write)
        members: dict[str, wiring.Member] = {}

        def address(prefix: str) -> None:
            members.update({
                f"{prefix}id": Out(id_width),
                f"{prefix}addr": Out(addr_width),
                f"{prefix}len": Out(8),
                f"{prefix}size": Out(3),
                f"{prefix}burst": Out(2),
                f"{prefix}lock": Out(1),
                f"{prefix}cache": Out(4),
                f"{prefix}prot": Out(3),
                f"{prefix}valid": Out(1),
                f"{prefix}ready": In(1),
            })

        if write:
            address("aw")
            members.update({
                "wdata": Out(data_width),
                "wstrb": Out(data_width // 8),
                "wlast": Out(1),
                "wvalid": Out(1),
                "wready": In(1),
                "bid": In(id_width),
                "bresp": In(2),
                "bvalid": In(1),
                "bready": Out(1),
            })
        if read:
            address("ar")
            members.update({
                "rid": In(id_width),
                "rdata": In(data_width),
                "rresp": In(2),
                "rlast": In(1),
                "rvalid": In(1),
                "rready": Out(1),
            })
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._params[0]

    @property
    def data_width(self) -> int:
        return self._params[1]

    @property
    def id_width(self) -> int:
        return self._params[2]

    @property
    def read(self) -> bool:
        return self._params[3]

    @property
    def write(self) -> bool:
        return self._params[4]

    def __eq__(self, other):
        return type(other) is type(self) and other._params == self._params

    def __hash__(self):
        return hash((type(self), self._params))

    def __repr__(self):
        a, d, i, r, w = self._params
        halves = "" if r and w else ", read=False" if w else ", write=False"
        return f"AXI4Signature(addr_width={a}, data_width={d}, id_width={i}{halves})"


def connect_part(m: Module, part, whole) -> None:
    """Connect a master's half port ``part`` (a read-only or write-only :class:`AXI4Signature`
    interface, not flipped) to the same-named members of the full master port ``whole`` of the
    enclosing component: outputs of ``part`` drive ``whole``, inputs of ``whole`` drive ``part``.

    (:func:`wiring.connect` wants identical member sets, which two halves and a whole do not have.)
    """
    for name, member in part.signature.members.items():
        src, dst = Value.cast(getattr(part, name)), Value.cast(getattr(whole, name))
        if member.flow == Out:
            m.d.comb += dst.eq(src)
        else:
            m.d.comb += src.eq(dst)


#: The payload members of the channels :class:`AxiSlice` buffers: (valid, ready, payload).
_R_CHANNEL = ("rvalid", "rready", ("rdata", "rresp", "rlast", "rid"))
_W_CHANNEL = ("wvalid", "wready", ("wdata", "wstrb", "wlast"))


def _skid(m: Module, src, dst, channel) -> None:
    """``channel`` from ``src`` to ``dst`` through a skid buffer: ``dst``'s valid and payload
    and ``src``'s ready are registers, one transfer per cycle."""
    valid, ready, payload = channel
    skid = {name: Signal.like(getattr(dst, name), name=f"skid_{name}") for name in payload}
    skid_valid = Signal(name=f"skid_{valid}")
    m.d.comb += getattr(src, ready).eq(~skid_valid)
    with m.If(~getattr(dst, valid) | getattr(dst, ready)):
        with m.If(skid_valid):
            m.d.sync += [getattr(dst, n).eq(skid[n]) for n in payload]
            m.d.sync += [getattr(dst, valid).eq(1), skid_valid.eq(0)]
        with m.Else():
            m.d.sync += getattr(dst, valid).eq(getattr(src, valid))
            m.d.sync += [getattr(dst, n).eq(getattr(src, n)) for n in payload]
    with m.Elif(getattr(src, valid) & ~skid_valid):
        m.d.sync += [skid[n].eq(getattr(src, n)) for n in payload]
        m.d.sync += skid_valid.eq(1)


class AxiSlice(wiring.Component):
    """An AXI4 link whose data channels (R, and W if the link writes) go through skid buffers;
    every other member passes.

    Each side sees the other's ready, valid and payload of a data channel from registers, still
    one beat per cycle: the master's ``rready`` logic no longer reaches the slave's read port in
    the same cycle, nor the slave's ``wready`` the master's write pipeline. Each beat arrives a
    cycle later.

    Members
    -------
    s_axi : In(signature)
        To the master.
    m_axi : Out(signature)
        To the slave.
    """

    def __init__(self, signature: AXI4Signature):
        super().__init__({"s_axi": In(signature), "m_axi": Out(signature)})

    def elaborate(self, platform) -> Module:
        m = Module()
        up, down = self.s_axi, self.m_axi
        sig = self.m_axi.signature
        channels = [(_R_CHANNEL, down, up)] if sig.read else []
        if sig.write:
            channels.append((_W_CHANNEL, up, down))
        buffered = {name for (valid, ready, payload), _, _ in channels
                    for name in (valid, ready, *payload)}
        for name, member in sig.members.items():
            if name in buffered:
                continue
            if member.flow == Out:
                m.d.comb += getattr(down, name).eq(getattr(up, name))
            else:
                m.d.comb += getattr(up, name).eq(getattr(down, name))
        for channel, src, dst in channels:
            _skid(m, src, dst, channel)
        return m
