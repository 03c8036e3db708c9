package dev.rslora.model;

import dev.rslora.backend.Backend;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.cpu.CpuBackend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.LoraLinear;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model-level switches a trainer expects (PEFT's merge_adapter / unmerge_adapter, train / eval, the grad mode):
 * all or nothing, a refusal names the module; and what a closed model or a null argument gets.
 */
class LoraModelSwitchesTest {
    private static final List<String> MODULES = List.of("net.0.fc", "net.1.fc", "net.2.fc");

    @TempDir
    Path dir;

    private final Backend ref = new ReferenceBackend();

    private static float[][] random(SplittableRandom rng, int rows, int cols) {
        float[][] a = new float[rows][cols];
        for (float[] row : a) {
            for (int j = 0; j < cols; j++) {
                row[j] = (float) rng.nextDouble(-1, 1);
            }
        }
        return a;
    }

    private static Map<String, float[][]> weights() {
        SplittableRandom rng = new SplittableRandom(21);
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (String m : MODULES) {
            w.put(m + ".weight", random(rng, 6, 6));
            w.put(m + ".bias", random(rng, 1, 6));
        }
        return w;
    }

    private static final PeftConfig CONFIG = PeftConfig.builder().targetModules("fc").r(2).loraAlpha(4).useRslora(true)
            .loraDropout(0.25).build();

    /** B = 0 makes a merge a no-op: give every layer a non-zero B. */
    private static LoraModel trained(LoraModel model) {
        SplittableRandom rng = new SplittableRandom(22);
        for (LoraLinear l : model.layers().values()) {
            l.loraB().copyFrom(random(rng, l.dOut(), 2));
        }
        return model;
    }

    private static Map<String, float[]> ws(LoraModel model) {
        Map<String, float[]> out = new LinkedHashMap<>();
        model.layers().forEach((p, l) -> out.put(p, l.weight().toFloatArray()));
        return out;
    }

    private static void assertSameWeights(Map<String, float[]> expected, LoraModel model) {
        model.layers().forEach((p, l) -> assertArrayEquals(expected.get(p), l.weight().toFloatArray(), p + ": W changed"));
    }

    private static String refused(Class<? extends Throwable> type, String fragment, Executable call) {
        String msg = assertThrows(type, call).getMessage();
        assertTrue(msg.contains(fragment), "expected '" + fragment + "' in: " + msg);
        return msg;
    }

    @Test
    void mergeAndUnmergeSwitchEveryLayerAndRefuseASecondCallWithoutTouchingW() {
        float[][] x = random(new SplittableRandom(23), 4, 6);
        try (LoraModel model = trained(LoraModel.wrapArrays(weights(), CONFIG, ref, 5))) {
            model.train(false);
            Map<String, float[][]> before = new LinkedHashMap<>();
            for (String m : MODULES) {
                before.put(m, model.forward(m, x));
            }
            Map<String, float[]> base = ws(model);
            assertFalse(model.isMerged());

            model.merge();
            assertTrue(model.isMerged());
            Map<String, float[]> merged = ws(model);
            for (String m : MODULES) {
                assertTrue(model.layer(m).isMerged(), m);
                assertFalse(java.util.Arrays.equals(base.get(m), merged.get(m)), m + ": W holds γ·B·A");
                float[][] y = model.forward(m, x);
                for (int n = 0; n < x.length; n++) {
                    assertArrayEquals(before.get(m)[n], y[n], 1e-5f, m + " row " + n + ": merged forward = unmerged forward");
                }
            }
            refused(IllegalStateException.class, "unmerge()", () -> model.backward(MODULES.get(0), new float[4][6]));
            refused(IllegalStateException.class, "module net.0.fc: already merged", model::merge);
            assertSameWeights(merged, model);
            refused(IllegalStateException.class, "module net.0.fc", () -> model.setAdaptersEnabled(false));

            model.unmerge();
            assertFalse(model.isMerged());
            model.layers().forEach((p, l) -> {
                assertFalse(l.isMerged(), p);
                assertArrayEquals(base.get(p), l.weight().toFloatArray(), 1e-6f, p + ": W back up to rounding");
            });
            Map<String, float[]> unmerged = ws(model);
            refused(IllegalStateException.class, "module net.0.fc: not merged", model::unmerge);
            assertSameWeights(unmerged, model);
        }
    }

    /** One layer already merged (through layer()) or disabled: the model's merge/unmerge change no layer. */
    @Test
    void aLayerThatRefusesLeavesEveryOtherLayerAsItWas() {
        try (LoraModel model = trained(LoraModel.wrapArrays(weights(), CONFIG, ref, 5))) {
            Map<String, float[]> base = ws(model);
            model.layer("net.1.fc").merge();
            Map<String, float[]> oneMerged = ws(model);
            refused(IllegalStateException.class, "module net.1.fc: already merged", model::merge);
            assertSameWeights(oneMerged, model);
            assertFalse(model.layer("net.0.fc").isMerged());
            assertFalse(model.layer("net.2.fc").isMerged());
            refused(IllegalStateException.class, "module net.0.fc: not merged", model::unmerge);
            assertSameWeights(oneMerged, model);
            assertTrue(model.layer("net.1.fc").isMerged(), "the merged layer stays merged");
            model.layer("net.1.fc").unmerge();

            model.layer("net.2.fc").setAdapterEnabled(false);
            Map<String, float[]> now = ws(model);
            refused(IllegalStateException.class, "module net.2.fc: the adapter is disabled", model::merge);
            assertSameWeights(now, model);
            model.layers().forEach((p, l) -> assertFalse(l.isMerged(), p));
            model.setAdaptersEnabled(true);
            model.merge();
            model.unmerge();
            model.layers().forEach((p, l) -> assertArrayEquals(base.get(p), l.weight().toFloatArray(), 1e-6f, p));
        }
    }

    /**
     * A layer closed on its own (through layer(path)): each switch threw "layer is closed" at that layer, naming no
     * module, after the layers before it had switched (eval mode, accumulate, step 7 on net.0.fc; second review).
     */
    @Test
    void aLayerClosedOnItsOwnIsRefusedBeforeAnyLayerSwitches() {
        try (LoraModel model = LoraModel.wrapArrays(weights(), CONFIG, ref, 5)) {
            model.layer("net.1.fc").close();
            LoraLinear first = model.layer("net.0.fc");
            String closed = "module net.1.fc: its layer was closed";
            refused(IllegalStateException.class, closed, () -> model.train(false));
            refused(IllegalStateException.class, closed, () -> model.setGradMode(GradMode.ACCUMULATE));
            refused(IllegalStateException.class, closed, () -> model.restoreDropoutSteps(Map.of("net.0.fc", 7L, "net.1.fc", 7L,
                    "net.2.fc", 7L)));
            refused(IllegalStateException.class, closed, () -> model.setAdaptersEnabled(false));
            refused(IllegalStateException.class, closed, model::zeroGrad);
            refused(IllegalStateException.class, closed, model::merge);
            // disableAdapters left the layers before the closed one disabled, with no scope to enable them again
            refused(IllegalStateException.class, closed + " (through layer(\"net.1.fc\")); no adapter was disabled",
                    model::disableAdapters);
            assertTrue(first.isTraining());
            assertEquals(GradMode.ASSIGN, first.gradMode());
            assertEquals(0, first.step());
            assertTrue(first.isAdapterEnabled());
            assertFalse(first.isMerged());
        }
    }

    /** A read-only W (a memory-mapped checkpoint's) on the last module: refused before the first W is written. */
    @Test
    void aReadOnlyWeightIsRefusedBeforeAnyLayerIsMerged() {
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> w = new LinkedHashMap<>();
            weights().forEach((name, v) -> {
                Tensor t = Tensor.fromMatrix(arena, DType.F32, v);
                if (name.endsWith(".bias")) {
                    t = Tensor.wrap(t.segment(), DType.F32, t.dim(1));
                } else if (name.equals("net.2.fc.weight")) {
                    t = Tensor.wrap(t.segment().asReadOnly(), DType.F32, t.shape());
                }
                w.put(name, t);
            });
            try (LoraModel model = trained(LoraModel.wrap(w, CONFIG, ref, 5))) {
                Map<String, float[]> base = ws(model);
                refused(IllegalArgumentException.class, "module net.2.fc: weight [6, 6] is read-only", model::merge);
                assertSameWeights(base, model);
                model.layers().forEach((p, l) -> assertFalse(l.isMerged(), p));
            }
        }
    }

    /**
     * A merge that a later layer refuses for an element past its dtype's range (F16 here) changes no W: every
     * layer's elements are checked before any W is written, and the refusal names the module. Before, the
     * layers before it were merged and unmerged again, which left their F16 W a rounding step off in places
     * (W + ΔW − ΔW), and the message named no module. Both backends that check elements up front.
     */
    @Test
    void aMergeALaterLayerRefusesForRangeWritesNoW() {
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            for (Backend be : new Backend[] {ref, cpu}) {
                Map<String, Tensor> w = new LinkedHashMap<>();
                weights().forEach((name, v) -> w.put(name, name.endsWith(".bias")
                        ? Tensor.wrap(Tensor.fromMatrix(arena, DType.F16, v).segment(), DType.F16, v[0].length)
                        : Tensor.fromMatrix(arena, DType.F16, v)));
                try (LoraModel model = trained(LoraModel.wrap(w, CONFIG, be, 5))) {
                    model.layer("net.2.fc").loraB().fill(1e6f);  // W + γ·B·A far past F16's 65504
                    Map<String, float[]> base = ws(model);
                    refused(IllegalArgumentException.class, "module net.2.fc: merge: the F16 weight's W[", model::merge);
                    assertSameWeights(base, model);
                    model.layers().forEach((p, l) -> assertFalse(l.isMerged(), p));
                    model.layer("net.2.fc").loraB().fill(0.5f);
                    model.merge();  // the refusal left every layer able to merge
                    assertTrue(model.isMerged());
                }
            }
        }
    }

    /**
     * Layer ids and A's initialisation followed the weight map's iteration order: a Map.of gave another model
     * with the same seed in another JVM (and a resumed run's optimizer state was refused). A map without an
     * order is now taken in name order, so it builds the same model as a TreeMap; a LinkedHashMap keeps its own.
     */
    @Test
    void aMapWithoutAnOrderIsTakenInNameOrder() {
        float[][] w = random(new SplittableRandom(31), 6, 6);
        // a HashMap iterates these keys as l.3, l.2, l.0, l.1 in every JVM (their String hashes): the test does not
        // depend on Map.of's per-JVM order to fail on the old code
        Map<String, float[][]> unordered = new java.util.HashMap<>();
        for (int i = 0; i < 4; i++) {
            unordered.put("l." + i + ".fc.weight", w);
        }
        List<String> sorted = List.of("l.0.fc", "l.1.fc", "l.2.fc", "l.3.fc");
        Map<String, float[][]> reversed = new LinkedHashMap<>();
        for (int i = 3; i >= 0; i--) {
            reversed.put("l." + i + ".fc.weight", w);
        }
        try (LoraModel a = LoraModel.wrapArrays(unordered, CONFIG, ref, 5);
             LoraModel b = LoraModel.wrapArrays(new java.util.TreeMap<>(unordered), CONFIG, ref, 5);
             LoraModel d = LoraModel.wrapArrays(Map.copyOf(unordered), CONFIG, ref, 5);
             LoraModel c = LoraModel.wrapArrays(reversed, CONFIG, ref, 5)) {
            assertEquals(sorted, List.copyOf(a.layers().keySet()));
            assertEquals(List.copyOf(b.layers().keySet()), List.copyOf(a.layers().keySet()));
            assertEquals(sorted, List.copyOf(d.layers().keySet()), "Map.of / Map.copyOf too");
            for (String m : sorted) {
                assertArrayEquals(b.layer(m).loraA().toFloatArray(), a.layer(m).loraA().toFloatArray(), m + ": the same A");
            }
            assertEquals(List.of("l.3.fc", "l.2.fc", "l.1.fc", "l.0.fc"), List.copyOf(c.layers().keySet()), "insertion order kept");
        }
    }

    @Test
    void gradModeAndTrainingModeSwitchEveryLayer() {
        float[][] x = random(new SplittableRandom(24), 3, 6);
        float[][] dy = random(new SplittableRandom(25), 3, 6);
        try (LoraModel model = trained(LoraModel.wrapArrays(weights(), CONFIG, ref, 5))) {
            assertTrue(model.isTraining());
            model.train(false);
            assertFalse(model.isTraining());
            model.layers().forEach((p, l) -> assertFalse(l.isTraining(), p));

            refused(IllegalArgumentException.class, "grad mode is null", () -> model.setGradMode(null));
            model.layers().forEach((p, l) -> assertEquals(GradMode.ASSIGN, l.gradMode(), p));
            model.setGradMode(GradMode.ACCUMULATE);
            model.layers().forEach((p, l) -> assertEquals(GradMode.ACCUMULATE, l.gradMode(), p));

            String m = "net.1.fc";
            model.forward(m, x);
            model.backward(m, dy);
            float[] once = model.layer(m).gradA().toFloatArray();
            model.forward(m, x);
            model.backward(m, dy);
            float[] twice = model.layer(m).gradA().toFloatArray();
            for (int i = 0; i < once.length; i++) {
                assertEquals(2 * once[i], twice[i], 1e-6f * Math.abs(once[i]) + 1e-7f, "accumulated dA[" + i + "]");
            }
            model.zeroGrad();
            model.layers().forEach((p, l) -> assertArrayEquals(new float[l.gradA().toFloatArray().length], l.gradA().toFloatArray(), p));
            model.setGradMode(GradMode.ASSIGN);
            model.forward(m, x);
            model.backward(m, dy);
            assertArrayEquals(once, model.layer(m).gradA().toFloatArray(), "assigned again");
        }
    }

    @Test
    void aClosedModelRefusesEverySwitch() {
        LoraModel model = LoraModel.wrapArrays(weights(), CONFIG, ref, 5);
        model.close();
        List<Executable> calls = List.of(model::merge, model::unmerge, () -> model.setGradMode(GradMode.ASSIGN),
                () -> model.train(true), model::isTraining, model::isMerged, model::zeroGrad,
                () -> model.setAdaptersEnabled(true), model::dropoutSteps, () -> model.restoreDropoutSteps(Map.of()),
                () -> model.saveDropoutSteps(dir.resolve("steps")), () -> model.loadDropoutSteps(dir.resolve("steps")),
                () -> model.save(dir.resolve("adapter")));
        for (Executable call : calls) {
            refused(IllegalStateException.class, "LoraModel is closed", call);
        }
        assertFalse(Files.exists(dir.resolve("steps")));
        assertFalse(Files.exists(dir.resolve("adapter")));
    }

    /** save(dir, null) threw a NullPointerException from deep inside the writer; now it names dtype and writes nothing. */
    @Test
    void aNullDtypeOrFolderIsRefusedBeforeAnythingIsWritten() {
        try (LoraModel model = LoraModel.wrapArrays(weights(), CONFIG, ref, 5)) {
            Path out = dir.resolve("adapter");
            refused(IllegalArgumentException.class, "dtype is null", () -> model.save(out, null));
            assertFalse(Files.exists(out));
            refused(IllegalArgumentException.class, "adapter folder is null", () -> model.save(null, DType.F32));
            refused(IllegalArgumentException.class, "adapter folder is null", () -> model.save(null));
        }
    }
}
