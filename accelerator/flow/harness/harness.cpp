// The compiled harness of the whole accelerator: an AXI4 slave memory, an AXI4-Lite register
// master and the clock loop, in C++ next to the Verilated model, behind a C API that
// accelerator/flow/harness.py calls through ctypes. No Python runs on any clock edge.
//
// Ports: Verilator spells Amaranth's "__" (m_axi__arvalid) as "___05F".
//
// The memory follows cocotbext-axi's AxiRam (the cocotb bench's memory) edge for edge at zero
// latency, so that both benches give the same cycle counts: sinks (AR, AW, W) and sources (R, B)
// with queues of two entries, a read process and a write process that move whole bursts between
// them. Per clock edge, with the values the design drove before it:
//   1. every sink takes a beat on valid && ready, then sets ready = !(queue full || paused);
//      every source, when its beat was taken or it drives nothing, drives its queue's next entry
//      (unless paused);
//   2. the read and write processes run until they block (an empty input queue, a full output
//      queue, or a latency still running).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "verilated.h"
#include "Vaccelerator.h"
#ifdef HARNESS_TRACE
#include "verilated_vcd_c.h"
#endif

namespace {

using Top = Vaccelerator;

constexpr int OKAY = 0;
constexpr int SLVERR = 2;
constexpr int INCR = 1;
constexpr size_t QUEUE_LIMIT = 2;  // cocotbext-axi's queue_occupancy_limit on every channel
constexpr uint64_t PERIOD_PS = 10000;  // the waveform's clock: 10 ns, as in the cocotb bench

enum Channel { CH_AR, CH_R, CH_AW, CH_W, CH_B, CHANNELS };

// -- signal access for every width Verilator uses ----------------------------------------------

template <typename T>
inline void set_bytes(T& sig, const uint8_t* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n < sizeof(v) ? n : sizeof(v));
    sig = static_cast<T>(v);
}
template <size_t W>
inline void set_bytes(VlWide<W>& sig, const uint8_t* p, size_t n) {
    std::memcpy(sig.data(), p, n);
}
template <typename T>
inline void get_bytes(const T& sig, uint8_t* p, size_t n) {
    uint64_t v = sig;
    std::memcpy(p, &v, n < sizeof(v) ? n : sizeof(v));
}
template <size_t W>
inline void get_bytes(const VlWide<W>& sig, uint8_t* p, size_t n) {
    std::memcpy(p, sig.data(), n);
}

// -- the memory: 4 GiB, allocated on touch in pages ---------------------------------------------

class Memory {
public:
    static constexpr unsigned PAGE_BITS = 16;
    static constexpr uint64_t PAGE = 1ull << PAGE_BITS;
    static constexpr uint64_t SPACE = 1ull << 32;

    Memory() : pages_(SPACE / PAGE) {}

    void write(uint64_t addr, const uint8_t* data, uint64_t n) {
        while (n) {
            uint64_t off = addr & (PAGE - 1);
            uint64_t chunk = std::min(n, PAGE - off);
            std::memcpy(page(addr, true) + off, data, chunk);
            addr = (addr + chunk) & (SPACE - 1);
            data += chunk;
            n -= chunk;
        }
    }
    void read(uint64_t addr, uint8_t* out, uint64_t n) {
        while (n) {
            uint64_t off = addr & (PAGE - 1);
            uint64_t chunk = std::min(n, PAGE - off);
            uint8_t* p = page(addr, false);
            if (p) std::memcpy(out, p + off, chunk);
            else std::memset(out, 0, chunk);
            addr = (addr + chunk) & (SPACE - 1);
            out += chunk;
            n -= chunk;
        }
    }
    size_t pages_touched() const {
        size_t count = 0;
        for (auto& p : pages_) count += p != nullptr;
        return count;
    }

private:
    uint8_t* page(uint64_t addr, bool create) {
        auto& p = pages_[(addr & (SPACE - 1)) >> PAGE_BITS];
        if (!p && create) p.reset(new uint8_t[PAGE]());
        return p.get();
    }
    std::vector<std::unique_ptr<uint8_t[]>> pages_;
};

// -- seeded random pauses (splitmix64) ------------------------------------------------------------

struct Rng {
    uint64_t state = 1;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

struct Burst {
    uint32_t id = 0;
    uint64_t addr = 0;
    uint32_t beats = 0;
    uint32_t size = 0;
    uint32_t burst = 0;
};

struct Beat {
    uint32_t id = 0;
    int resp = OKAY;
    bool last = false;
    uint8_t data[32] = {};
    uint32_t strb = 0;
};

}  // namespace

struct Harness {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Top> top;
#ifdef HARNESS_TRACE
    std::unique_ptr<VerilatedVcdC> vcd;
#endif
    Memory mem;
    uint64_t cycle = 0;
    const size_t lanes = HARNESS_DATA_BYTES;  // bytes of the AXI data bus

    // settings
    uint64_t read_latency = 0, write_latency = 0;
    double pause_probability = 0.0;
    Rng rng;
    std::vector<uint8_t> pattern[CHANNELS];  // a periodic pause pattern per channel
    uint64_t axil_wait = 0;                   // register master: ready in the n-th cycle of valid
    uint64_t err_lo = 1, err_hi = 0;          // SLVERR on [lo, hi) (empty when lo > hi)

    // channel state
    bool pause[CHANNELS] = {};
    std::deque<Burst> ar_q, aw_q;
    std::deque<Beat> w_q, r_q, b_q;
    bool rvalid = false, bvalid = false, arready = false, awready = false, wready = false;
    // read process: the burst it is on, the next beat, and when it may start
    bool rd_busy = false;
    Burst rd;
    uint32_t rd_beat = 0;
    uint64_t rd_start = 0;
    // write process
    bool wr_busy = false;
    Burst wr;
    uint32_t wr_beat = 0;
    int wr_resp = OKAY;
    bool b_pending = false;
    uint64_t b_time = 0;
    Beat b_beat;

    explicit Harness(const char* trace) : ctx(new VerilatedContext), top(new Top(ctx.get())) {
        top->clk = 0;
        top->rst = 1;
        top->eval();
        if (trace && *trace) trace_open(trace);
    }
    ~Harness() { trace_close(); top->final(); }

    bool trace_open(const char* path) {
#ifdef HARNESS_TRACE
        trace_close();
        ctx->traceEverOn(true);
        vcd.reset(new VerilatedVcdC);
        top->trace(vcd.get(), 99);
        vcd->open(path);
        return vcd->isOpen();
#else
        (void)path;
        return false;
#endif
    }
    void trace_close() {
#ifdef HARNESS_TRACE
        if (vcd) {
            vcd->close();
            vcd.reset();
        }
#endif
    }
    void dump(uint64_t t) {
#ifdef HARNESS_TRACE
        if (vcd) vcd->dump(t);
#else
        (void)t;
#endif
    }

    bool in_error_range(uint64_t addr) const { return err_lo <= addr && addr < err_hi; }
    static bool crosses_4k(const Burst& b, uint64_t step) {
        const uint64_t start = (b.addr / step) * step;
        return (start % 4096) + uint64_t(b.beats) * step > 4096;
    }

    void clear_bus() {
        ar_q.clear(); aw_q.clear(); w_q.clear(); r_q.clear(); b_q.clear();
        rvalid = bvalid = arready = awready = wready = false;
        rd_busy = wr_busy = b_pending = false;
        for (auto& p : pause) p = false;
        apply_memory_outputs();
    }

    void apply_memory_outputs() {
        top->m_axi___05Farready = arready;
        top->m_axi___05Fawready = awready;
        top->m_axi___05Fwready = wready;
        top->m_axi___05Frvalid = rvalid;
        top->m_axi___05Fbvalid = bvalid;
    }

    bool next_pause(int ch) {
        if (!pattern[ch].empty()) return pattern[ch][cycle % pattern[ch].size()];
        if (pause_probability > 0) return rng.uniform() < pause_probability;
        return false;
    }

    // One clock cycle: sample, rising edge, the memory's work at the edge, falling edge.
    void tick() {
        // what the design drove before the edge
        const bool arvalid = top->m_axi___05Farvalid, awvalid = top->m_axi___05Fawvalid,
                   wvalid = top->m_axi___05Fwvalid, rready = top->m_axi___05Frready,
                   bready = top->m_axi___05Fbready;
        Burst ar_in, aw_in;
        Beat w_in;
        if (arvalid && arready) {
            ar_in = {static_cast<uint32_t>(top->m_axi___05Farid), top->m_axi___05Faraddr,
                     static_cast<uint32_t>(top->m_axi___05Farlen) + 1u, top->m_axi___05Farsize,
                     top->m_axi___05Farburst};
        }
        if (awvalid && awready) {
            aw_in = {static_cast<uint32_t>(top->m_axi___05Fawid), top->m_axi___05Fawaddr,
                     static_cast<uint32_t>(top->m_axi___05Fawlen) + 1u, top->m_axi___05Fawsize,
                     top->m_axi___05Fawburst};
        }
        if (wvalid && wready) {
            get_bytes(top->m_axi___05Fwdata, w_in.data, lanes);
            w_in.strb = top->m_axi___05Fwstrb;
            w_in.last = top->m_axi___05Fwlast;
        }
        const bool r_taken = rvalid && rready, b_taken = bvalid && bready;

        top->clk = 1;
        top->eval();
        dump(cycle * PERIOD_PS);
        ++cycle;

        // 1. sinks and sources, with the pause values of before the edge
        if (arvalid && arready) ar_q.push_back(ar_in);
        arready = !(ar_q.size() >= QUEUE_LIMIT || pause[CH_AR]);
        if (awvalid && awready) aw_q.push_back(aw_in);
        awready = !(aw_q.size() >= QUEUE_LIMIT || pause[CH_AW]);
        if (wvalid && wready) w_q.push_back(w_in);
        wready = !(w_q.size() >= QUEUE_LIMIT || pause[CH_W]);
        if (r_taken || !rvalid) {
            if (!r_q.empty() && !pause[CH_R]) {
                const Beat& beat = r_q.front();
                top->m_axi___05Frid = beat.id;
                top->m_axi___05Frresp = beat.resp;
                top->m_axi___05Frlast = beat.last;
                set_bytes(top->m_axi___05Frdata, beat.data, lanes);
                r_q.pop_front();
                rvalid = true;
            } else {
                rvalid = false;
            }
        }
        if (b_taken || !bvalid) {
            if (!b_q.empty() && !pause[CH_B]) {
                top->m_axi___05Fbid = b_q.front().id;
                top->m_axi___05Fbresp = b_q.front().resp;
                b_q.pop_front();
                bvalid = true;
            } else {
                bvalid = false;
            }
        }
        for (int ch = 0; ch < CHANNELS; ++ch) pause[ch] = next_pause(ch);

        // 2. the processes
        read_process();
        write_process();

        apply_memory_outputs();
        top->clk = 0;
        top->eval();
        dump(cycle * PERIOD_PS - PERIOD_PS / 2);
    }

    void read_process() {
        for (;;) {
            if (!rd_busy) {
                if (ar_q.empty()) return;
                rd = ar_q.front();
                ar_q.pop_front();
                rd_busy = true;
                rd_beat = 0;
                rd_start = cycle + read_latency;
            }
            if (cycle < rd_start) return;
            while (rd_beat < rd.beats) {
                if (r_q.size() >= QUEUE_LIMIT) return;
                Beat beat;
                beat.id = rd.id;
                beat.last = rd_beat + 1 == rd.beats;
                const uint64_t step = 1ull << rd.size;
                const uint64_t addr = (rd.addr / step) * step + uint64_t(rd_beat) * step;
                const uint64_t word = (addr / lanes) * lanes;
                // a burst the DMA never issues (docs/memory-system.md: full-width beats
                // from a bus-aligned address) is answered SLVERR too
                if (rd.burst != INCR || in_error_range(word) || step > lanes
                        || rd.addr % lanes != 0 || crosses_4k(rd, step)) {
                    beat.resp = SLVERR;
                } else {
                    mem.read(word, beat.data, lanes);
                }
                r_q.push_back(beat);
                ++rd_beat;
            }
            rd_busy = false;
        }
    }

    void write_process() {
        for (;;) {
            if (b_pending) {
                if (cycle < b_time || b_q.size() >= QUEUE_LIMIT) return;
                b_q.push_back(b_beat);
                b_pending = false;
            }
            if (!wr_busy) {
                if (aw_q.empty()) return;
                wr = aw_q.front();
                aw_q.pop_front();
                wr_busy = true;
                wr_beat = 0;
                wr_resp = (wr.burst != INCR || (1ull << wr.size) > lanes
                           || wr.addr % lanes != 0) ? SLVERR : OKAY;
            }
            while (wr_beat < wr.beats) {
                if (w_q.empty()) return;
                Beat w = w_q.front();
                w_q.pop_front();
                const uint64_t step = 1ull << wr.size;
                const uint64_t addr = (wr.addr / step) * step + uint64_t(wr_beat) * step;
                const uint64_t word = (addr / lanes) * lanes;
                // a protocol error (WLAST not on the last beat only, a burst across a 4 KiB
                // boundary) is answered SLVERR, so that the command fails visibly
                if (in_error_range(word) || w.last != (wr_beat + 1 == wr.beats)
                        || crosses_4k(wr, step))
                    wr_resp = SLVERR;
                if (wr_resp == OKAY) {
                    for (size_t i = 0; i < lanes; ++i)
                        if (w.strb >> i & 1) mem.write(word + i, &w.data[i], 1);
                }
                ++wr_beat;
            }
            wr_busy = false;
            b_beat = Beat();
            b_beat.id = wr.id;
            b_beat.resp = wr_resp;
            b_pending = true;
            b_time = cycle + write_latency;
        }
    }

    void reset(unsigned cycles) {
        top->rst = 1;
        clear_bus();
        for (unsigned i = 0; i < cycles; ++i) tick();
        top->rst = 0;
        clear_bus();
        top->eval();
    }
};

// -- the C API ----------------------------------------------------------------------------------

extern "C" {

Harness* h_create(const char* trace) { return new Harness(trace); }
void h_destroy(Harness* h) { delete h; }
unsigned h_data_bytes(Harness* h) { return static_cast<unsigned>(h->lanes); }
uint64_t h_cycle(Harness* h) { return h->cycle; }
int h_irq(Harness* h) { return h->top->irq; }
int h_has_trace() {
#ifdef HARNESS_TRACE
    return 1;
#else
    return 0;
#endif
}
int h_trace_open(Harness* h, const char* path) { return h->trace_open(path); }
void h_trace_close(Harness* h) { h->trace_close(); }

void h_reset(Harness* h, unsigned cycles) { h->reset(cycles); }
void h_tick(Harness* h, uint64_t n) { for (uint64_t i = 0; i < n; ++i) h->tick(); }

void h_mem_write(Harness* h, uint64_t addr, const uint8_t* data, uint64_t n) {
    h->mem.write(addr, data, n);
}
void h_mem_read(Harness* h, uint64_t addr, uint8_t* out, uint64_t n) { h->mem.read(addr, out, n); }

void h_set_latency(Harness* h, uint64_t read, uint64_t write) {
    h->read_latency = read;
    h->write_latency = write;
}
void h_set_backpressure(Harness* h, double probability, uint64_t seed) {
    h->pause_probability = probability;
    h->rng.state = seed;
}
// A periodic pause pattern for one channel (0 AR, 1 R, 2 AW, 3 W, 4 B): pattern[cycle % n].
void h_set_pause_pattern(Harness* h, int channel, const uint8_t* pattern, uint64_t n) {
    h->pattern[channel].assign(pattern, pattern + n);
}
// The register master raises RREADY and BREADY in the cycles-th cycle it sees RVALID or BVALID.
void h_set_register_wait(Harness* h, uint64_t cycles) { h->axil_wait = cycles; }
void h_set_error_range(Harness* h, uint64_t lo, uint64_t hi) {
    h->err_lo = lo;
    h->err_hi = hi;
}

// AXI4-Lite write with byte strobes: the response code, or -1 when the slave did not answer
// within max_cycles.
int h_reg_write_strb(Harness* h, uint32_t addr, uint32_t value, uint32_t strb,
                     uint64_t max_cycles) {
    auto* t = h->top.get();
    t->s_axil___05Fawaddr = addr;
    t->s_axil___05Fawprot = 0;
    t->s_axil___05Fwdata = value;
    t->s_axil___05Fwstrb = strb & 0xF;
    t->s_axil___05Fawvalid = 1;
    t->s_axil___05Fwvalid = 1;
    uint64_t wait = h->axil_wait;
    t->s_axil___05Fbready = wait == 0;
    t->eval();
    bool aw = false, w = false;
    for (uint64_t i = 0; i < max_cycles; ++i) {
        const bool aw_now = t->s_axil___05Fawvalid && t->s_axil___05Fawready;
        const bool w_now = t->s_axil___05Fwvalid && t->s_axil___05Fwready;
        const bool b_now = t->s_axil___05Fbvalid && t->s_axil___05Fbready;
        const int resp = t->s_axil___05Fbresp;
        h->tick();
        if (aw_now) { aw = true; t->s_axil___05Fawvalid = 0; }
        if (w_now) { w = true; t->s_axil___05Fwvalid = 0; }
        if (b_now && aw && w) {
            t->s_axil___05Fbready = 0;
            t->s_axil___05Fwdata = ~value;  // no longer valid: a slave must not take it
            t->eval();
            return resp;
        }
        if (t->s_axil___05Fbvalid && !t->s_axil___05Fbready && --wait <= 0)
            t->s_axil___05Fbready = 1;
        t->eval();
    }
    t->s_axil___05Fawvalid = t->s_axil___05Fwvalid = t->s_axil___05Fbready = 0;
    t->eval();
    return -1;
}

int h_reg_write(Harness* h, uint32_t addr, uint32_t value, uint64_t max_cycles) {
    return h_reg_write_strb(h, addr, value, 0xF, max_cycles);
}

// An AXI4-Lite write whose W beat comes `delay` cycles after its address was taken: the
// response code, 4 when the slave answered before it took the W beat (AXI forbids it), or -1
// when it did not answer within max_cycles.
int h_reg_write_late_w(Harness* h, uint32_t addr, uint32_t value, uint64_t delay,
                       uint64_t max_cycles) {
    auto* t = h->top.get();
    t->s_axil___05Fawaddr = addr;
    t->s_axil___05Fawprot = 0;
    t->s_axil___05Fwdata = value;
    t->s_axil___05Fwstrb = 0xF;
    t->s_axil___05Fawvalid = 1;
    t->s_axil___05Fwvalid = 0;
    t->s_axil___05Fbready = 1;
    t->eval();
    bool aw = false, w = false;
    uint64_t aw_at = 0;
    for (uint64_t i = 0; i < max_cycles; ++i) {
        const bool aw_now = t->s_axil___05Fawvalid && t->s_axil___05Fawready;
        const bool w_now = t->s_axil___05Fwvalid && t->s_axil___05Fwready;
        const bool b_now = t->s_axil___05Fbvalid && t->s_axil___05Fbready;
        const int resp = t->s_axil___05Fbresp;
        h->tick();
        if (aw_now) { aw = true; aw_at = i; t->s_axil___05Fawvalid = 0; }
        if (w_now) { w = true; t->s_axil___05Fwvalid = 0; }
        if (b_now) {
            t->s_axil___05Fawvalid = t->s_axil___05Fwvalid = t->s_axil___05Fbready = 0;
            t->eval();
            return w ? resp : 4;
        }
        if (aw && !w && !t->s_axil___05Fwvalid && i >= aw_at + delay)
            t->s_axil___05Fwvalid = 1;
        t->eval();
    }
    t->s_axil___05Fawvalid = t->s_axil___05Fwvalid = t->s_axil___05Fbready = 0;
    t->eval();
    return -1;
}

// Two AXI4-Lite writes with their W beats first, back to back (AXI4-Lite lets W lead AW): the
// second W beat waits at the slave while the first write has no address yet, then while it
// waits for its answer. Each address goes two cycles after its W beat is taken and once the
// writes before it are answered. The two response codes (second in bits 8 up), or -1 when the
// slave did not answer within max_cycles.
int h_reg_write_pair(Harness* h, uint32_t addr0, uint32_t value0, uint32_t addr1,
                     uint32_t value1, uint64_t max_cycles) {
    auto* t = h->top.get();
    const uint32_t addr[2] = {addr0, addr1}, value[2] = {value0, value1};
    uint64_t w_at[2] = {0, 0};
    int w = 0, aw = 0, b = 0, resp[2] = {0, 0};
    t->s_axil___05Fawprot = 0;
    t->s_axil___05Fwstrb = 0xF;
    t->s_axil___05Fwdata = value[0];
    t->s_axil___05Fwvalid = 1;
    t->s_axil___05Fawvalid = 0;
    t->s_axil___05Fbready = 1;
    t->eval();
    for (uint64_t i = 0; i < max_cycles; ++i) {
        const bool aw_now = t->s_axil___05Fawvalid && t->s_axil___05Fawready;
        const bool w_now = t->s_axil___05Fwvalid && t->s_axil___05Fwready;
        const bool b_now = t->s_axil___05Fbvalid && t->s_axil___05Fbready;
        const int r = t->s_axil___05Fbresp;
        h->tick();
        if (w_now) {
            w_at[w++] = i;
            t->s_axil___05Fwdata = w < 2 ? value[1] : ~value[1];
            t->s_axil___05Fwvalid = w < 2;
        }
        if (aw_now) { ++aw; t->s_axil___05Fawvalid = 0; }
        if (b_now && b < aw) {
            resp[b++] = r;
            if (b == 2) break;
        }
        if (!t->s_axil___05Fawvalid && aw < w && aw == b && i >= w_at[aw] + 2) {
            t->s_axil___05Fawaddr = addr[aw];
            t->s_axil___05Fawvalid = 1;
        }
        t->eval();
    }
    t->s_axil___05Fawvalid = t->s_axil___05Fwvalid = t->s_axil___05Fbready = 0;
    t->eval();
    return b == 2 ? resp[0] | resp[1] << 8 : -1;
}

int h_reg_read(Harness* h, uint32_t addr, uint32_t* value, uint64_t max_cycles) {
    auto* t = h->top.get();
    t->s_axil___05Faraddr = addr;
    t->s_axil___05Farprot = 0;
    t->s_axil___05Farvalid = 1;
    uint64_t wait = h->axil_wait;
    t->s_axil___05Frready = wait == 0;
    t->eval();
    bool ar = false;
    for (uint64_t i = 0; i < max_cycles; ++i) {
        const bool ar_now = t->s_axil___05Farvalid && t->s_axil___05Farready;
        const bool r_now = t->s_axil___05Frvalid && t->s_axil___05Frready;
        const uint32_t data = t->s_axil___05Frdata;
        const int resp = t->s_axil___05Frresp;
        h->tick();
        if (ar_now) { ar = true; t->s_axil___05Farvalid = 0; }
        if (r_now && (ar || ar_now)) {
            t->s_axil___05Frready = 0;
            t->eval();
            *value = data;
            return resp;
        }
        if (t->s_axil___05Frvalid && !t->s_axil___05Frready && --wait <= 0)
            t->s_axil___05Frready = 1;
        t->eval();
    }
    t->s_axil___05Farvalid = t->s_axil___05Frready = 0;
    t->eval();
    return -1;
}

// Run until irq is high (0), or max_cycles more cycles have run (1).
int h_run_until_irq(Harness* h, uint64_t max_cycles) {
    for (uint64_t i = 0; i < max_cycles; ++i) {
        if (h->top->irq) return 0;
        h->tick();
    }
    return h->top->irq ? 0 : 1;
}

}  // extern "C"
