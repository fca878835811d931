"""cocotb testbenches, installed as ``accelerator.verification`` so a wheel carries them."""
