package dev.rslora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.peft.Golden;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.GoldenValues;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link Adafactor} against trajectories of an independent float64 NumPy transcription of
 * {@code transformers.optimization.Adafactor} (java/src/test/python/make_adafactor_golden.py): 20
 * cases over 12–40 steps, 1-D, 2-D and 3-D, F32 and BF16 (with and without master weights), every
 * option (relative_step, scale_parameter, warmup_init, beta1, weight decay, clip_threshold, eps1/eps2,
 * decay_rate), zero rows and columns, rows longer than a reduction segment (2053 &gt; 2048) and more
 * rows than a column chunk (131 &gt; 64). The parameter is compared at the snapshot steps, the
 * state after the last step.
 *
 * <p>Tolerances: the library computes in fp32 (the Hugging Face update is fp32 too), the oracle in
 * float64. F32 parameters (and masters): |Δ| ≤ 2e-6·|p| + 1e-4·(|p_t − p_0| + lr_1); state: relative
 * 1e-4 (when written the worst fp32 error was 0.21 of its bound, in warmup-init-2d at step 40:
 * 1.05e-7 at p = 0.254). BF16 parameters are rounded from fp32 values that differ from the float64
 * ones in their last bits, so a value at a rounding boundary may land one bf16 step away: |Δ| ≤ 2
 * bf16 ulps without master weights (rounded every step, as in Hugging Face; none differed when
 * written), ≤ 1 with them (one value of bf16-master-2d differed by one step at step 10).
 */
class AdafactorGoldenTest {
    private static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static Arena arena;
    private static SafetensorsFile golden;
    private static List<JsonNode> cases;
    private static double worst;
    private static int flips;

    @BeforeAll
    static void load() throws Exception {
        arena = Arena.ofShared();
        golden = SafetensorsFile.open(Golden.path("adafactor/adafactor_golden.safetensors"), arena);
        cases = new ArrayList<>();
        new ObjectMapper().readTree(golden.metadata().get("cases")).forEach(cases::add);
    }

    @AfterAll
    static void close() {
        System.out.printf("adafactor golden: fp32 worst |error| / tolerance %.3g; 16-bit values one rounding step away: %d%n",
                worst, flips);
        arena.close();
    }

    static Stream<String> names() throws Exception {
        List<String> n = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(Golden.path("adafactor/adafactor_golden.safetensors"), a);
            new ObjectMapper().readTree(f.metadata().get("cases")).forEach(c -> n.add(c.get("name").asText()));
        }
        return n.stream();
    }

    /** value(seed, i) of the generator (see {@link GoldenValues}). */
    static float value(long seed, long i) {
        return GoldenValues.value(seed, i);
    }

    /** The config of a golden case's JSON (Hugging Face names). */
    public static AdafactorConfig config(JsonNode c) {
        return new AdafactorConfig(c.get("lr").isNull() ? null : c.get("lr").asDouble(), c.get("eps1").asDouble(),
                c.get("eps2").asDouble(), c.get("clip_threshold").asDouble(), c.get("decay_rate").asDouble(),
                c.get("beta1").isNull() ? null : c.get("beta1").asDouble(), c.get("weight_decay").asDouble(),
                c.get("scale_parameter").asBoolean(), c.get("relative_step").asBoolean(), c.get("warmup_init").asBoolean());
    }

    private static double[] doubles(String name) {
        MemorySegment b = golden.bytes(name);
        double[] d = new double[(int) (b.byteSize() / 8)];
        MemorySegment.copy(b, LE_DOUBLE, 0, d, 0, d.length);
        return d;
    }

    @Test
    void everyCaseHasATest() {
        assertEquals(20, cases.size());
        Set<String> names = new HashSet<>();
        cases.forEach(c -> names.add(c.get("name").asText()));
        assertEquals(cases.size(), names.size());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void matchesTheHuggingFaceUpdate(String name) {
        JsonNode c = cases.stream().filter(x -> x.get("name").asText().equals(name)).findFirst().orElseThrow();
        long[] shape = new long[c.get("shape").size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = c.get("shape").get(i).asLong();
        }
        DType dt = DType.valueOf(c.get("dtype").asText());
        boolean master = c.get("master").asBoolean();
        AdafactorConfig cfg = config(c.get("config"));
        int steps = c.get("steps").asInt();
        long pseed = c.get("pseed").asLong();
        long gseed = c.get("gseed").asLong();
        Set<Integer> snaps = new HashSet<>();
        c.get("snapshots").forEach(s -> snaps.add(s.asInt()));
        Set<Integer> zeroRows = new HashSet<>();
        c.get("zero_rows").forEach(s -> zeroRows.add(s.asInt()));
        Set<Integer> zeroCols = new HashSet<>();
        c.get("zero_cols").forEach(s -> zeroCols.add(s.asInt()));
        long rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
        long cols = shape.length >= 1 ? shape[shape.length - 1] : 1;

        try (Arena a = Arena.ofConfined()) {
            Tensor p = Tensor.allocate(a, dt, shape);
            Tensor g = Tensor.allocate(a, DType.F32, shape);
            for (long i = 0; i < p.numel(); i++) {
                p.set(i, 0.5f * value(pseed, i));
            }
            float[] p0 = p.toFloatArray();
            double lr1 = firstStepLr(cfg, p0);
            try (Adafactor opt = new Adafactor(List.of(new Parameter("p", p, g)), cfg, master)) {
                for (int t = 1; t <= steps; t++) {
                    float scale = t % 7 == 0 ? 0x1p-12f : 0x1p-2f;
                    for (long i = 0; i < g.numel(); i++) {
                        long col = i % cols;
                        long row = (i / cols) % rows;
                        boolean zero = shape.length >= 2 && (zeroRows.contains((int) row) || zeroCols.contains((int) col));
                        g.set(i, zero ? 0f : value(gseed + t, i) * scale);
                    }
                    opt.step();
                    if (snaps.contains(t)) {
                        double[] want = doubles(name + ".param." + t);
                        compareParam(name, t, dt, master, p.toFloatArray(), want, p0, lr1);
                        if (master) {
                            double[] wantMaster = doubles(name + ".master." + t);
                            float[] got = opt.snapshot().entries().getFirst().master();
                            compareParam(name + " master", t, DType.F32, true, got, wantMaster, p0, lr1);
                        }
                    }
                }
                AdafactorState.Entry e = opt.snapshot().entries().getFirst();
                if (shape.length >= 2) {
                    compareState(name, "exp_avg_sq_row", e.expAvgSqRow(), doubles(name + ".exp_avg_sq_row"));
                    compareState(name, "exp_avg_sq_col", e.expAvgSqCol(), doubles(name + ".exp_avg_sq_col"));
                } else {
                    compareState(name, "exp_avg_sq", e.expAvgSq(), doubles(name + ".exp_avg_sq"));
                }
                if (cfg.usesFirstMoment()) {
                    compareState(name, "exp_avg", e.expAvg(), doubles(name + ".exp_avg"));
                }
            }
        }
    }

    /** lr_1 of the config for the initial parameter (the size of one early step). */
    private static double firstStepLr(AdafactorConfig cfg, float[] p0) {
        double sq = 0;
        for (float x : p0) {
            sq += (double) x * x;
        }
        return dev.rslora.optim.AdafactorSpec.step(cfg, 1).lr(dev.rslora.optim.AdafactorSpec.rms(sq, p0.length));
    }

    private static void compareParam(String name, int t, DType dt, boolean master, float[] got, double[] want, float[] p0, double lr1) {
        assertEquals(want.length, got.length, name);
        boolean rounded = dt != DType.F32 && !master;
        for (int i = 0; i < want.length; i++) {
            double tol;
            if (rounded) {
                tol = 2 * Math.ulp((float) Math.abs(want[i])) * 65536;  // 2 bf16 ulps (bf16 keeps the top 16 bits)
                tol = Math.max(tol, 1e-30);
            } else if (dt != DType.F32) {
                tol = Math.ulp((float) Math.abs(want[i])) * 65536;  // the master's rounding: may sit one bf16 step away
            } else {
                tol = 2e-6 * Math.abs(want[i]) + 1e-4 * (Math.abs(want[i] - p0[i]) + lr1);
            }
            double err = Math.abs(got[i] - want[i]);
            if (dt == DType.F32) {
                worst = Math.max(worst, err / tol);
            } else if (err > 0) {
                flips++;
            }
            if (!(err <= tol)) {
                fail(name + " step " + t + " [" + i + "]: got " + got[i] + ", Hugging Face (float64) " + want[i] + ", |Δ| " + err
                        + " > tol " + tol);
            }
        }
    }

    private static void compareState(String name, String what, float[] got, double[] want) {
        assertEquals(want.length, got.length, name + " " + what);
        for (int i = 0; i < want.length; i++) {
            double tol = 1e-4 * Math.abs(want[i]) + 1e-37;
            double err = Math.abs(got[i] - want[i]);
            worst = Math.max(worst, err / tol);
            assertTrue(err <= tol, name + " " + what + "[" + i + "]: got " + got[i] + ", Hugging Face (float64) " + want[i]);
        }
    }
}
