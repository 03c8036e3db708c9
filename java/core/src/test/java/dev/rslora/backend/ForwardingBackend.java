package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

/**
 * A backend that passes every call to {@link #inner()}: a test overrides only the calls it changes
 * (a refusal, a failure, a pause) and the rest behave as the inner backend's.
 */
public interface ForwardingBackend extends Backend {
    /** The backend every call not overridden goes to. */
    Backend inner();

    @Override
    default String name() {
        return inner().name();
    }

    @Override
    default FrozenWeight prepare(Tensor weight, Tensor bias) {
        return inner().prepare(weight, bias);
    }

    @Override
    default void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        inner().forward(p, w, x, a, b, u, y);
    }

    @Override
    default void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy, Tensor dx,
                          Tensor gradA, Tensor gradB) {
        inner().backward(p, w, x, a, b, u, dy, dx, gradA, gradB);
    }

    @Override
    default void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        inner().merge(w, a, b, gamma, sign);
    }
}
