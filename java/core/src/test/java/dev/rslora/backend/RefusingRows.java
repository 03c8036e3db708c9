package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

/**
 * A backend that refuses forwards of {@code refused} rows (as the cpu backend refuses a batch past
 * its limits) and passes everything else to {@code inner}: for tests of what a layer or model
 * keeps when its backend refuses a call.
 *
 * @param inner   the backend that runs every other call
 * @param refused the row count whose forwards are refused
 */
public record RefusingRows(Backend inner, int refused) implements ForwardingBackend {
    @Override
    public String name() {
        return "refusing";
    }

    @Override
    public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        if (p.n() == refused) {
            throw new IllegalArgumentException("n=" + refused + " refused");
        }
        inner.forward(p, w, x, a, b, u, y);
    }
}
