package dev.rslora.cli;

import dev.rslora.tensor.Tensor;

import java.io.PrintWriter;

/**
 * One warning line per output tensor that holds NaN or ±Inf. The commands write their outputs as
 * computed (a correctness check may feed extreme values on purpose), but never silently: their inputs
 * are refused when not finite, so a non-finite output means an extreme input or setting overflowed
 * (an ε of 0 over a zero gradient, a learning rate of 1e300, β past fp32).
 */
final class NonFiniteOutputs {
    private NonFiniteOutputs() {
    }

    /**
     * Prints {@code "rslora COMMAND: warning: NAME holds K non-finite value(s) (the first at flat index I, V): WHY"}
     * when {@code t} holds any.
     *
     * @param err     the command's error stream
     * @param command the command's name
     * @param name    the output tensor's name
     * @param t       the tensor as written
     * @param why     the likely cause, for the message
     * @return whether a warning was printed
     */
    static boolean warn(PrintWriter err, String command, String name, Tensor t, String why) {
        long count = 0;
        long first = -1;
        for (long i = 0, n = t.numel(); i < n; i++) {
            if (!Float.isFinite(t.get(i))) {
                count++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (count == 0) {
            return false;
        }
        err.printf("rslora %s: warning: %s holds %d non-finite value%s (the first at flat index %d, %s): %s%n", command, name,
                count, count == 1 ? "" : "s", first, t.get(first), why);
        return true;
    }
}
