"""A self-contained synthesis top for the systolic core: a few pins in, one pin out.

:class:`CoreSynthTop` wraps :class:`~accelerator.hw.core.SystolicCore` so that a board build
synthesizes the whole array with only two pins:

* one input pin (the board's first button, else the UART's ``rx``) is shifted, one bit per cycle,
  into a shift register as wide as every input of the core together (``operands`` payload and
  valid, ``weights`` payload and valid for weight-stationary, ``results.ready``);
* whenever a result beat is accepted, its whole payload (and ``last``) is loaded into an output
  shift register, which otherwise shifts one bit per cycle to the output pin (the board's first
  LED, else an RGB LED's red channel, else the UART's ``tx``); a second LED, if any, shows
  ``busy``.

Every input bit of the core is thus driven by a flip-flop the tools cannot predict, and every
output bit reaches a pin, so nothing of the array is optimized away. It is a synthesis vehicle
(resources, Fmax), not a usable interface: the real board top is ``accelerator.hw.board``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from ..config import AcceleratorConfig
from ..hw.core import SystolicCore, register_copy

__all__ = ["CoreSynthTop"]


def _try_request(platform, name: str, number: int = 0):
    """The resource's pins as ports (Amaranth 0.5: buffers are ours to add), or None."""
    try:
        return platform.request(name, number, dir="-")
    except Exception:  # amaranth raises ResourceError (or a lookup error)
        return None


def _buffer(m: Module, name: str, direction: str, port) -> io.Buffer:
    m.submodules[name] = buffer = io.Buffer(direction, port)
    return buffer


class CoreSynthTop(Elaboratable):
    """The systolic core with its stream ports serialized through shift registers.

    ``clk_freq`` is accepted (and ignored) so that every synthesis top has the same factory
    signature as the board top: ``factory(config, *, clk_freq)``.
    """

    def __init__(self, config: AcceleratorConfig, *, clk_freq: float | None = None,
                 dsp_pes: int | None = None, paired_pes: int = 0):
        self.config = config
        self.clk_freq = clk_freq
        self.core = SystolicCore(config, dsp_pes=dsp_pes, paired_pes=paired_pes)

    def input_width(self) -> int:
        """Bits shifted in: every input of the core."""
        core = self.core
        width = len(core.operands.payload.as_value()) + 1 + 1  # payload, valid, results.ready
        if self.config.dataflow == "ws":
            width += len(core.weights.payload.as_value()) + 1
        return width

    def output_width(self) -> int:
        """Bits shifted out: the result payload."""
        return len(self.core.results.payload.as_value())

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self.core
        serial_in = Signal()
        serial_out = Signal()

        if platform is not None:
            button = _try_request(platform, "button", 0)
            uart = None
            if button is not None:
                m.d.comb += serial_in.eq(_buffer(m, "button", "i", button).i)
            else:
                uart = _try_request(platform, "uart", 0)
                if uart is None:
                    raise ValueError("CoreSynthTop needs a `button` or a `uart` resource")
                m.d.comb += serial_in.eq(_buffer(m, "uart_rx", "i", uart.rx).i)
            led = _try_request(platform, "led", 0)
            if led is not None:
                m.d.comb += _buffer(m, "led", "o", led).o.eq(serial_out)
                busy_led = _try_request(platform, "led", 1)
                if busy_led is not None:
                    m.d.comb += _buffer(m, "busy_led", "o", busy_led).o.eq(core.busy)
            else:
                rgb = _try_request(platform, "rgb_led", 0)
                if rgb is not None:
                    m.d.comb += [_buffer(m, "rgb_r", "o", rgb.r).o.eq(serial_out),
                                 _buffer(m, "rgb_g", "o", rgb.g).o.eq(core.busy)]
                else:
                    uart = uart or _try_request(platform, "uart", 0)
                    if uart is None:
                        raise ValueError("CoreSynthTop needs an `led`, `rgb_led` or `uart`")
                    m.d.comb += _buffer(m, "uart_tx", "o", uart.tx).o.eq(serial_out)

        # Inputs: one shift register, sliced into every input of the core.
        # Around a pipelined core (whose data registers have no reset) the shift registers to
        # and from the pins have none either: on the 12×12 ECP5 core the reset to out_bits was
        # the critical path. On an iCE40 the small cores place better with it.
        no_reset = core.is_pipelined(platform)
        in_bits = Signal(self.input_width(), reset_less=no_reset)
        m.d.sync += in_bits.eq(Cat(serial_in, in_bits[:-1]))
        fields = [core.operands.payload.as_value(), core.operands.valid, core.results.ready]
        if self.config.dataflow == "ws":
            fields += [core.weights.payload.as_value(), core.weights.valid]
        m.d.comb += Cat(*fields).eq(in_bits)

        # Outputs: load an accepted result beat, else shift towards the pin. Pipelined, each
        # 32 bits of the output register see `results.ready` through a copy of its flip-flop
        # (fed from the bit before it in the chain, so equal to it): one flip-flop driving the
        # whole register was the 12×12 weight-stationary core's longest path (7.6 ns of routing).
        out_bits = Signal(self.output_width(), reset_less=no_reset)
        payload = core.results.payload.as_value()
        ready_at = len(Cat(*fields[:2]))  # results.ready's bit: after the operands' fields
        taken = None
        if self.config.registered_dsp:
            # The registered-DSP core runs at twice the clock: its results pass two registers
            # (an accepted beat's flag and payload, then a copy of the flag per 32 bits) before
            # the output register, as they would into any consumer's own registers. Straight
            # from `results.valid` to the 417 load enables, the 12×13 core's longest path
            # (106.6 MHz) was the harness's: 4.3 ns of routing across the die.
            staged = Signal.like(payload, reset_less=True)
            staged_again = Signal.like(payload, reset_less=True)
            taken = Signal()
            m.d.sync += [staged.eq(payload), staged_again.eq(staged),
                         taken.eq(core.results.valid & core.results.ready)]
            payload = staged_again
        for lo in range(0, len(out_bits), 32):
            hi = min(lo + 32, len(out_bits))
            if taken is not None:
                load = register_copy(m, platform, taken, f"results_taken_{lo // 32}", init=0)
            elif no_reset:
                ready = register_copy(m, platform, in_bits[ready_at - 1],
                                      f"results_ready_{lo // 32}", init=0)
                load = core.results.valid & ready
            else:
                load = core.results.valid & core.results.ready
            with m.If(load):
                m.d.sync += out_bits[lo:hi].eq(payload[lo:hi])
            with m.Else():
                m.d.sync += out_bits[lo:hi].eq(Cat(out_bits[lo + 1:hi],
                                                   out_bits[hi] if hi < len(out_bits) else 0))
        m.d.comb += serial_out.eq(out_bits[0])
        return m
