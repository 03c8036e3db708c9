package dev.rslora.train;

import dev.rslora.core.LoraLinear;
import dev.rslora.tensor.Tensor;

import java.util.List;
import java.util.Objects;

/**
 * A trainable tensor and its gradient, as an optimizer sees them. Both are borrowed live views
 * (for example {@link LoraLinear#loraA()} and {@link LoraLinear#gradA()}); the optimizer updates
 * {@code value} in place and only reads {@code grad}.
 *
 * @param name  unique name within one optimizer (used to match saved state), e.g. {@code "layers.0.lora_A.weight"}
 * @param value the parameter, any dtype
 * @param grad  its gradient, same shape, any dtype, not sharing memory with value
 */
public record Parameter(String name, Tensor value, Tensor grad) {

    /** Checks the name, that value and grad have one shape, and that they do not share memory. */
    public Parameter {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("parameter name must not be blank, got '" + name + "'");
        }
        Objects.requireNonNull(value, "value of " + name);
        Objects.requireNonNull(grad, "grad of " + name);
        if (!grad.sameShape(value.shape())) {
            throw new IllegalArgumentException("parameter " + name + ": grad shape " + grad.shapeString()
                    + " differs from value shape " + value.shapeString());
        }
        if (value.overlaps(grad)) {
            throw new IllegalArgumentException("parameter " + name + ": grad shares memory with value (an optimizer step "
                    + "would update the gradient it reads); pass a separate gradient tensor");
        }
    }

    /**
     * The two trainable tensors of a LoRA layer: {@code prefix + ".lora_A.weight"} (A [r, d_in]) and
     * {@code prefix + ".lora_B.weight"} (B [d_out, r]), with their gradients.
     *
     * @param layer  the layer whose adapter is trained (its A, B and their gradient tensors are used,
     *               not copied)
     * @param prefix the module path, e.g. {@code "model.layers.0.self_attn.q_proj"} (PEFT names)
     * @return the two parameters, A first
     * @throws IllegalArgumentException if layer or prefix is null
     */

    public static List<Parameter> of(LoraLinear layer, String prefix) {
        if (layer == null || prefix == null) {  // a null prefix named the parameters "null.lora_A.weight"
            throw new IllegalArgumentException("Parameter.of: " + (layer == null ? "layer" : "prefix") + " is null");
        }
        return List.of(new Parameter(prefix + ".lora_A.weight", layer.loraA(), layer.gradA()),
                new Parameter(prefix + ".lora_B.weight", layer.loraB(), layer.gradB()));
    }
}
