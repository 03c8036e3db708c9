package dev.rslora.backend;

/**
 * Whether backward assigns ({@code dA = …}) or accumulates ({@code dA += …}) the adapter
 * gradients dA and dB. Accumulate is what micro-batching needs. dX is an activation gradient,
 * not a parameter gradient: it is always assigned.
 */
public enum GradMode {
    /** dA, dB ← the gradients of this step (the default). */
    ASSIGN,
    /** dA, dB += the gradients of this step (micro-batch accumulation). */
    ACCUMULATE
}
