package dev.rslora.cli;

import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The tensors of a {@code rslora layer} input file, validated: names present and no others, one dtype among
 * F32/BF16/F16 for all, and shapes that agree. Every error names the tensors and their shapes.
 *
 * <pre>x [N, d_in], weight [d_out, d_in], bias [d_out] (optional), lora_A [r, d_in], lora_B [d_out, r], grad_y [N, d_out]</pre>
 */
record LayerInputs(Tensor x, Tensor weight, Tensor bias, Tensor loraA, Tensor loraB, Tensor gradY) {

    int n() {
        return (int) x.dim(0);
    }

    int dIn() {
        return (int) x.dim(1);
    }

    int dOut() {
        return (int) weight.dim(0);
    }

    int rank() {
        return (int) loraA.dim(0);
    }

    DType dtype() {
        return x.dtype();
    }

    static LayerInputs from(SafetensorsFile f) throws Exception {
        List<String> required = List.of("x", "weight", "lora_A", "lora_B", "grad_y");
        List<String> missing = new ArrayList<>();
        for (String name : required) {
            if (!f.contains(name)) {
                missing.add(name);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(f.source() + ": missing tensor(s) " + missing + " (file has " + preview(f.names()) + ")");
        }
        List<String> present = new ArrayList<>(required);
        if (f.contains("bias")) {
            present.add("bias");
        }
        for (String name : f.names()) {
            // a misspelled optional tensor ("Bias", "b") would otherwise be dropped without a word
            if (!present.contains(name)) {
                throw new IllegalArgumentException(f.source() + ": unexpected tensor '" + name + "' (the input holds x, weight, "
                        + "lora_A, lora_B, grad_y and optionally bias)");
            }
        }
        String firstDtype = f.entry("x").dtypeName();
        for (String name : present) {
            SafetensorsEntry e = f.entry(name);
            if (!e.dtype().isComputable()) {
                throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' has dtype " + e.dtypeName()
                        + "; layer needs F32, BF16 or F16");
            }
            if (!e.dtypeName().equals(firstDtype)) {
                throw new IllegalArgumentException(f.source() + ": dtype mismatch: x is " + firstDtype + " but " + name
                        + " is " + e.dtypeName() + " (all tensors must share one dtype)");
            }
            if (name.equals("bias") ? e.rank() != 1 : e.rank() != 2) {
                throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' " + e.shapeString() + " must be "
                        + (name.equals("bias") ? "1-D [d_out]" : "2-D"));
            }
            for (long d : e.shape()) {
                if (d < 1 || d > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' " + e.shapeString()
                            + " has a dimension outside [1, " + Integer.MAX_VALUE + "]");
                }
            }
        }
        long[] x = f.entry("x").shape();
        long[] w = f.entry("weight").shape();
        long[] a = f.entry("lora_A").shape();
        long[] b = f.entry("lora_B").shape();
        long[] gy = f.entry("grad_y").shape();
        agree(f, "x", x, 1, "weight", w, 1, "d_in");
        agree(f, "lora_A", a, 1, "x", x, 1, "d_in");
        agree(f, "lora_B", b, 0, "weight", w, 0, "d_out");
        agree(f, "lora_B", b, 1, "lora_A", a, 0, "r");
        agree(f, "grad_y", gy, 0, "x", x, 0, "N");
        agree(f, "grad_y", gy, 1, "weight", w, 0, "d_out");
        Tensor bias = null;
        if (f.contains("bias")) {
            agree(f, "bias", f.entry("bias").shape(), 0, "weight", w, 0, "d_out");
            bias = f.tensor("bias");
        }
        return new LayerInputs(f.tensor("x"), f.tensor("weight"), bias, f.tensor("lora_A"), f.tensor("lora_B"),
                f.tensor("grad_y"));
    }

    private static String preview(List<String> names) {
        return names.size() <= 8 ? names.toString()
                : names.subList(0, 8) + " and " + (names.size() - 8) + " more";
    }

    private static void agree(SafetensorsFile f, String n1, long[] s1, int ax1, String n2, long[] s2, int ax2, String dim) {
        if (s1[ax1] != s2[ax2]) {
            throw new IllegalArgumentException(f.source() + ": shape mismatch: " + n1 + " " + java.util.Arrays.toString(s1)
                    + " and " + n2 + " " + java.util.Arrays.toString(s2) + " disagree on " + dim + " (" + s1[ax1] + " vs "
                    + s2[ax2] + ")");
        }
    }
}
