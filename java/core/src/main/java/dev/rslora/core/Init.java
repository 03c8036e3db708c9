package dev.rslora.core;

/** Adapter initialisation (PEFT {@code init_lora_weights}); B is always zero so a new adapter is a no-op. */
public enum Init {
    /** A ~ U(−1/√d_in, +1/√d_in) (PEFT default, kaiming_uniform with a = √5), B = 0. */
    DEFAULT,
    /** A ~ N(0, (1/r)²) (PEFT "gaussian"), B = 0. */
    GAUSSIAN
}
