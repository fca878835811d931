// A simulation model of the ECP5 MULT18X18D, for Verilator: yosys ships none (only the blackbox
// of cells_bb.v). Only the modes the gateware uses: no cascade (SOURCEA/B = 0, C unused), P = A·B
// with each operand signed when SIGNEDA / SIGNEDB is high, unregistered (accelerator/hw/pe.py
// PlacedProduct, the same as yosys's own mapping of a `*`) or with registers on
// (accelerator/hw/pe_ecp5.py): REG_INPUTA/B on A and B, REG_PIPELINE on the product,
// REG_OUTPUT on P, each with its _CLK, _CE and _RST parameters choosing one of CLK0..3,
// CE0..3 and RST0..3. A register loads at a rising edge of its clock while its clock enable
// is high; RESETMODE "SYNC": its reset, high at such an edge, clears it. SIGNEDA/B are taken
// with the operands (through the input registers when on), as the block's timing model says.
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTA_CE = "CE0",
    parameter REG_INPUTA_RST = "RST0",
    parameter REG_INPUTB_CLK = "NONE", parameter REG_INPUTB_CE = "CE0",
    parameter REG_INPUTB_RST = "RST0",
    parameter REG_INPUTC_CLK = "NONE", parameter REG_INPUTC_CE = "CE0",
    parameter REG_INPUTC_RST = "RST0",
    parameter REG_PIPELINE_CLK = "NONE", parameter REG_PIPELINE_CE = "CE0",
    parameter REG_PIPELINE_RST = "RST0",
    parameter REG_OUTPUT_CLK = "NONE", parameter REG_OUTPUT_CE = "CE0",
    parameter REG_OUTPUT_RST = "RST0",
    parameter CLK0_DIV = "ENABLED", parameter CLK1_DIV = "ENABLED",
    parameter CLK2_DIV = "ENABLED", parameter CLK3_DIV = "ENABLED",
    parameter HIGHSPEED_CLK = "NONE", parameter GSR = "ENABLED",
    parameter CAS_MATCH_REG = "FALSE", parameter SOURCEB_MODE = "B_SHIFT",
    parameter MULT_BYPASS = "DISABLED", parameter RESETMODE = "SYNC"
) (
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
    output P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
    wire [3:0] clks = {CLK3, CLK2, CLK1, CLK0};
    wire [3:0] ces = {CE3, CE2, CE1, CE0};
    wire [3:0] rsts = {RST3, RST2, RST1, RST0};

    // "CLK0".."CLK3", "CE0".., "RST0"..: the index is the name's last character
    function automatic integer index(input [8*4-1:0] name);
        index = name[7:0] - 8'd48;
    endfunction
    localparam integer IA_CLK = index(REG_INPUTA_CLK), IA_CE = index(REG_INPUTA_CE),
                       IA_RST = index(REG_INPUTA_RST);
    localparam integer IB_CLK = index(REG_INPUTB_CLK), IB_CE = index(REG_INPUTB_CE),
                       IB_RST = index(REG_INPUTB_RST);
    localparam integer PL_CLK = index(REG_PIPELINE_CLK), PL_CE = index(REG_PIPELINE_CE),
                       PL_RST = index(REG_PIPELINE_RST);
    localparam integer OU_CLK = index(REG_OUTPUT_CLK), OU_CE = index(REG_OUTPUT_CE),
                       OU_RST = index(REG_OUTPUT_RST);

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};

    reg [18:0] a_reg = 19'd0, b_reg = 19'd0;   // with its sign control
    reg [35:0] pipe_reg = 36'd0, out_reg = 36'd0;

    wire [18:0] a_in = {SIGNEDA, a}, b_in = {SIGNEDB, b};
    wire [18:0] a_q = REG_INPUTA_CLK == "NONE" ? a_in : a_reg;
    wire [18:0] b_q = REG_INPUTB_CLK == "NONE" ? b_in : b_reg;
    wire signed [36:0] wide = $signed({a_q[18] & a_q[17], a_q[17:0]})
                              * $signed({b_q[18] & b_q[17], b_q[17:0]});
    wire [35:0] product = wide[35:0];
    wire [35:0] pipe_q = REG_PIPELINE_CLK == "NONE" ? product : pipe_reg;
    wire [35:0] out_q = REG_OUTPUT_CLK == "NONE" ? pipe_q : out_reg;

    generate
        if (REG_INPUTA_CLK != "NONE")
            always @(posedge clks[IA_CLK & 3])
                if (rsts[IA_RST & 3]) a_reg <= 19'd0;
                else if (ces[IA_CE & 3]) a_reg <= a_in;
        if (REG_INPUTB_CLK != "NONE")
            always @(posedge clks[IB_CLK & 3])
                if (rsts[IB_RST & 3]) b_reg <= 19'd0;
                else if (ces[IB_CE & 3]) b_reg <= b_in;
        if (REG_PIPELINE_CLK != "NONE")
            always @(posedge clks[PL_CLK & 3])
                if (rsts[PL_RST & 3]) pipe_reg <= 36'd0;
                else if (ces[PL_CE & 3]) pipe_reg <= product;
        if (REG_OUTPUT_CLK != "NONE")
            always @(posedge clks[OU_CLK & 3])
                if (rsts[OU_RST & 3]) out_reg <= 36'd0;
                else if (ces[OU_CE & 3]) out_reg <= pipe_q;
    endgenerate

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
            P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0}
        = out_q;
endmodule
