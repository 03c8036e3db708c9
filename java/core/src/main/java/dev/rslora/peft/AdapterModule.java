package dev.rslora.peft;

import dev.rslora.core.LoraConfig;
import dev.rslora.tensor.Tensor;

import java.util.Objects;

/**
 * One module's adapter: its path in the base model, its config (r, α, scaling, hence γ) and the
 * factors {@code A [r, d_in]} and {@code B [d_out, r]} (views: of a mapped adapter file, of a
 * {@link dev.rslora.core.LoraLinear}'s live parameters, or of an arena the caller owns).
 *
 * @param path   module path, e.g. {@code model.layers.0.self_attn.q_proj}; its base weight is {@code path + ".weight"}
 * @param config r, α and scaling as the PEFT config gives them for this path (its seed is 0: PEFT
 *               files carry no dropout seed; {@link AdapterSet#layer} takes one)
 * @param loraA  A [r, d_in], any of F32, BF16, F16
 * @param loraB  B [d_out, r], any of F32, BF16, F16
 */
public record AdapterModule(String path, LoraConfig config, Tensor loraA, Tensor loraB) {

    /** Checks that A is [r, d_in] and B is [d_out, r] with the config's r. */
    public AdapterModule {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(config, "config");
        if (loraA.rank() != 2 || loraB.rank() != 2 || loraA.dim(0) != config.rank() || loraB.dim(1) != config.rank()) {
            throw new IllegalArgumentException("module " + path + ": lora_A " + loraA.shapeString() + " and lora_B "
                    + loraB.shapeString() + " must be [r, d_in] and [d_out, r] with r = " + config.rank());
        }
    }

    /**
     * γ = α/√r (rsLoRA) or α/r (LoRA).
     *
     * @return the module's γ
     */
    public double gamma() {
        return config.gamma();
    }

    /**
     * The rank r.
     *
     * @return r ≥ 1, the rows of A and columns of B
     */
    public int rank() {
        return config.rank();
    }

    /**
     * d_in, the columns of A.
     *
     * @return the base layer's input width
     */
    public long dIn() {
        return loraA.dim(1);
    }

    /**
     * d_out, the rows of B.
     *
     * @return the base layer's output width
     */
    public long dOut() {
        return loraB.dim(0);
    }

    /**
     * The base weight's tensor name.
     *
     * @return {@code path + ".weight"}
     */
    public String weightName() {
        return path + ".weight";
    }

    /**
     * The module's trainable parameter count.
     *
     * @return numel(A) + numel(B) = r·(d_in + d_out)
     */

    public long parameterCount() {
        return loraA.numel() + loraB.numel();
    }
}
