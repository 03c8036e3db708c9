package dev.rslora.cli;

import dev.rslora.peft.AdapterModule;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** The text {@code rslora inspect} prints for an adapter: one header block, one line per module, the extra tensors, the totals. */
final class Inspect {
    private Inspect() {
    }

    static void print(PrintWriter out, Path dir, AdapterSet set) {
        PeftConfig c = set.config();
        out.printf("adapter: %s%n", dir);
        out.printf("peft_type: LORA  task_type: %s  base_model: %s%n", c.taskType(), c.baseModelNameOrPath());
        out.printf("scaling: %s (use_rslora: %s)  fan_in_fan_out: %s  lora_dropout: %s  bias: %s%n",
                c.useRslora() ? "rslora, γ = α/√r" : "lora, γ = α/r", c.useRslora(), c.fanInFanOut(), c.loraDropout(), c.bias());
        List<DType> dtypes = set.dtypes();
        out.printf("dtype: %s%n", dtypes.isEmpty() ? "-" : dtypes.stream().map(Enum::name).collect(Collectors.joining(", ")));
        out.printf("modules: %d%n", set.modules().size());
        int width = Math.max(6, set.modules().keySet().stream().mapToInt(String::length).max().orElse(6));
        String row = "  %-" + width + "s  %4s  %8s  %12s  %-14s %-14s %12s%n";
        out.printf(row, "module", "r", "alpha", "gamma", "lora_A", "lora_B", "params");
        for (AdapterModule m : set.modules().values()) {
            out.printf(row, m.path(), m.rank(), number(m.config().alpha()), sixDigits(m.gamma()),
                    m.loraA().shapeString(), m.loraB().shapeString(), m.parameterCount());
        }
        if (!set.extras().isEmpty()) {
            out.printf("extra tensors (replace the base tensor of the same name on merge): %d%n", set.extras().size());
            for (Map.Entry<String, Tensor> e : set.extras().entrySet()) {
                out.printf("  %-" + width + "s  %-5s %-14s %12d%n", e.getKey(), e.getValue().dtype(), e.getValue().shapeString(),
                        e.getValue().numel());
            }
        }
        long lora = set.loraParameterCount();
        long extra = set.extraParameterCount();
        out.printf("parameters: %d in LoRA factors + %d in extra tensors = %d%n", lora, extra, lora + extra);
        out.flush();
    }

    /**
     * γ to 6 significant digits without trailing zeros: 4, 5.65685, 0.125; in scientific notation
     * outside [1e-4, 1e7) (5E-9, 1.25E+12), where the plain digits of γ = 5e-321 ran to 327 characters.
     */
    static String sixDigits(double v) {
        java.math.BigDecimal d = new java.math.BigDecimal(v).round(new java.math.MathContext(6)).stripTrailingZeros();
        if (v == 0 || (Math.abs(v) >= 1e-4 && Math.abs(v) < 1e7)) {
            String s = d.toPlainString();
            return s.equals("-0") ? "0" : s;
        }
        // BigDecimal.toString() keeps plain digits down to 1e-6 (0.00005): the exponent is written here
        String digits = d.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - d.scale();
        return (v < 0 ? "-" : "") + digits.charAt(0) + (digits.length() > 1 ? "." + digits.substring(1) : "") + "E"
                + (exponent >= 0 ? "+" : "") + exponent;
    }

    /** 8 for 8.0, 3.5 for 3.5. */
    static String number(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }
}
