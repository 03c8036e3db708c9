package dev.rslora.bench.report;

/** Where a measurement ran: the results file has one section each. */
public enum Platform {
    CPU,
    GPU
}
