package dev.rslora.bench.report;

/** What a measurement times: a LoRA layer step, or the frozen base linear alone (R's denominator). */
public enum Role {
    LORA,
    BASE
}
