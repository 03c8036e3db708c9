package dev.rslora.model;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-module dropout steps a bit-exact resume needs (neither the adapter folder nor an optimizer state file holds
 * them): captured, restored, written to and read from their file, and refused when they do not fit the model.
 */
class DropoutStepsTest {
    private static final List<String> MODULES = List.of("net.0.fc", "net.1.fc", "net.2.fc");
    private static final PeftConfig CONFIG = PeftConfig.builder().targetModules("fc").r(2).loraAlpha(4).useRslora(true)
            .loraDropout(0.3).build();

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

    private static Map<String, float[][]> weights(List<String> modules) {
        SplittableRandom rng = new SplittableRandom(31);
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (String m : modules) {
            w.put(m + ".weight", random(rng, 5, 5));
        }
        return w;
    }

    /** {@code times} training forwards of every module (each advances its dropout step). */
    private static void forwards(LoraModel model, int times) {
        float[][] x = random(new SplittableRandom(32), 3, 5);
        for (int t = 0; t < times; t++) {
            for (String m : model.layers().keySet()) {
                model.forward(m, x);
            }
        }
    }

    private static <T extends Throwable> String refused(Class<T> type, String fragment, Executable call) {
        String msg = assertThrows(type, call).getMessage();
        assertTrue(msg.contains(fragment), "expected '" + fragment + "' in: " + msg);
        return msg;
    }

    private static Map<String, Long> steps(long a, long b, long c) {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put(MODULES.get(0), a);
        m.put(MODULES.get(1), b);
        m.put(MODULES.get(2), c);
        return m;
    }

    @Test
    void stepsAdvanceWithTrainingForwardsAndAreRestoredAllOrNothing() {
        try (LoraModel model = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 7)) {
            assertEquals(steps(0, 0, 0), model.dropoutSteps());
            forwards(model, 3);
            model.train(false);
            forwards(model, 2);
            assertEquals(steps(3, 3, 3), model.dropoutSteps(), "eval forwards draw no mask");
            assertEquals(List.copyOf(model.layers().keySet()), List.copyOf(model.dropoutSteps().keySet()), "weight order");
            assertThrows(UnsupportedOperationException.class, () -> model.dropoutSteps().put("x", 1L));

            model.restoreDropoutSteps(steps(10, 20, 30));
            assertEquals(20, model.layer(MODULES.get(1)).step());

            Map<String, Long> missing = steps(1, 2, 3);
            missing.remove(MODULES.get(2));
            refused(IllegalArgumentException.class, "missing [net.2.fc]", () -> model.restoreDropoutSteps(missing));
            Map<String, Long> extra = steps(1, 2, 3);
            extra.put("net.9.fc", 4L);
            refused(IllegalArgumentException.class, "not adapted here [net.9.fc]", () -> model.restoreDropoutSteps(extra));
            Map<String, Long> renamed = steps(1, 2, 3);
            renamed.remove(MODULES.get(0));
            renamed.put("net.0.gc", 1L);
            String msg = refused(IllegalArgumentException.class, "missing [net.0.fc]", () -> model.restoreDropoutSteps(renamed));
            assertTrue(msg.contains("not adapted here [net.0.gc]"), msg);
            refused(IllegalArgumentException.class, "dropout step of module net.2.fc is -1",
                    () -> model.restoreDropoutSteps(steps(1, 2, -1)));
            refused(IllegalArgumentException.class, "dropout step of module net.1.fc is null",
                    () -> model.restoreDropoutSteps(steps(1, 2, 3).entrySet().stream().collect(LinkedHashMap::new,
                            (m, e) -> m.put(e.getKey(), e.getKey().equals(MODULES.get(1)) ? null : e.getValue()), Map::putAll)));
            refused(IllegalArgumentException.class, "dropout steps are null", () -> model.restoreDropoutSteps(null));
            assertEquals(steps(10, 20, 30), model.dropoutSteps(), "no refused restore changed a layer");
        }
    }

    /**
     * The steps written inside the adapter folder: the folder still loads (as PEFT, LoraModel.load reads only its two
     * files), and a fresh model over it draws the same masks as the one that was saved.
     */
    @Test
    void aFreshModelRestoredFromTheFileDrawsTheSameMasks() throws IOException {
        Path adapter = dir.resolve("adapter");
        float[][] x = random(new SplittableRandom(33), 4, 5);
        float[][] next;
        try (LoraModel model = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 7)) {
            SplittableRandom rng = new SplittableRandom(34);
            model.layers().values().forEach(l -> l.loraB().copyFrom(random(rng, 5, 2)));
            forwards(model, 4);
            model.layer(MODULES.get(1)).setStep(9);
            model.save(adapter);
            model.saveDropoutSteps(adapter.resolve("dropout_steps.safetensors"));
            next = model.forward(MODULES.get(1), x);
        }
        try (Arena arena = Arena.ofConfined()) {
            Map<String, String> meta = SafetensorsFile.open(adapter.resolve("dropout_steps.safetensors"), arena).metadata();
            assertEquals("rslora.dropout", meta.get("format"));
            assertEquals("7", meta.get("seed"));
            assertEquals("{\"net.0.fc\":4,\"net.1.fc\":9,\"net.2.fc\":4}", meta.get("steps"));
            assertEquals("{\"net.0.fc\":0,\"net.1.fc\":1,\"net.2.fc\":2}", meta.get("layer_ids"));
        }
        try (Arena arena = Arena.ofShared()) {
            assertEquals(MODULES, List.copyOf(AdapterSet.load(adapter, arena).modules().keySet()));
        }
        try (LoraModel fresh = LoraModel.loadArrays(adapter, weights(MODULES), ref, 7)) {
            float[][] without = fresh.forward(MODULES.get(1), x);
            fresh.loadDropoutSteps(adapter.resolve("dropout_steps.safetensors"));
            assertEquals(steps(4, 9, 4), fresh.dropoutSteps());
            float[][] with = fresh.forward(MODULES.get(1), x);
            for (int n = 0; n < x.length; n++) {
                assertArrayEquals(next[n], with[n], "row " + n + ": the saved run's next mask");
            }
            assertTrue(!java.util.Arrays.deepEquals(next, without), "without the steps, step 0's mask is drawn again");
        }
    }

    @Test
    void aFileOfAnotherRunIsRefusedNamingWhatDiffersAndChangesNothing() throws IOException {
        Path file = dir.resolve("steps.safetensors");
        try (LoraModel model = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 7)) {
            forwards(model, 2);
            model.saveDropoutSteps(file);
        }
        try (LoraModel seed8 = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 8)) {
            refused(IllegalArgumentException.class, "dropout seed is 7, this model's 8", () -> seed8.loadDropoutSteps(file));
            assertEquals(steps(0, 0, 0), seed8.dropoutSteps());
        }
        List<String> reversed = new ArrayList<>(MODULES);
        Collections.reverse(reversed);
        try (LoraModel otherOrder = LoraModel.wrapArrays(weights(reversed), CONFIG, ref, 7)) {
            refused(IllegalArgumentException.class, "module net.2.fc had layer id 2, here 0", () -> otherOrder.loadDropoutSteps(file));
            assertEquals(0, otherOrder.layer("net.0.fc").step());
        }
        try (LoraModel fewer = LoraModel.wrapArrays(weights(List.of("net.0.fc", "net.7.fc")), CONFIG, ref, 7)) {
            String msg = refused(IllegalArgumentException.class, "missing [net.7.fc]", () -> fewer.loadDropoutSteps(file));
            assertTrue(msg.contains("not adapted here [net.1.fc, net.2.fc]") && msg.contains(file.toString()), msg);
            assertEquals(0, fewer.layer("net.0.fc").step());
        }
        try (LoraModel model = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 7)) {
            refused(IllegalArgumentException.class, "dropout-steps file is null", () -> model.loadDropoutSteps(null));
            refused(IllegalArgumentException.class, "dropout-steps file is null", () -> model.saveDropoutSteps(null));
            Files.createDirectory(dir.resolve("missing"));
            Path absent = dir.resolve("missing").resolve("steps");
            assertThrows(IOException.class, () -> model.loadDropoutSteps(absent));
        }
    }

    /** Writes a metadata-only safetensors file with the given metadata (and optionally one tensor). */
    private Path crafted(String name, Map<String, String> meta, boolean withTensor) throws IOException {
        Path f = dir.resolve(name);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().metadata(meta);
            if (withTensor) {
                w.add("steps", Tensor.allocate(arena, DType.F32, 3));
            }
            w.write(f);
        }
        return f;
    }

    private static Map<String, String> good() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "rslora.dropout");
        m.put("version", "1");
        m.put("seed", "7");
        m.put("layer_ids", "{\"net.0.fc\":0,\"net.1.fc\":1,\"net.2.fc\":2}");
        m.put("steps", "{\"net.0.fc\":5,\"net.1.fc\":5,\"net.2.fc\":5}");
        return m;
    }

    @Test
    void aMalformedFileIsRefusedNamingTheFileAndTheKey() throws IOException {
        try (LoraModel model = LoraModel.wrapArrays(weights(MODULES), CONFIG, ref, 7)) {
            model.loadDropoutSteps(crafted("good", good(), false));
            assertEquals(steps(5, 5, 5), model.dropoutSteps());
            model.restoreDropoutSteps(steps(0, 0, 0));

            Map<String, String[]> cases = new LinkedHashMap<>();
            cases.put("format", new String[] {"rslora.adamw", "not a dropout-steps file (metadata format=rslora.adamw"});
            cases.put("version", new String[] {"3", "unsupported dropout-steps version 3"});
            cases.put("seed", new String[] {"seven", "metadata seed=seven is not an integer"});
            cases.put("steps", new String[] {"{\"net.0.fc\":5,\"net.1.fc\":-5,\"net.2.fc\":5}", "steps: module net.1.fc has step -5"});
            cases.put("layer_ids", new String[] {"[0,1,2]", "metadata layer_ids is not a JSON object"});
            for (Map.Entry<String, String[]> c : cases.entrySet()) {
                Map<String, String> meta = good();
                meta.put(c.getKey(), c.getValue()[0]);
                Path f = crafted("bad-" + c.getKey(), meta, false);
                String msg = refused(IOException.class, c.getValue()[1], () -> model.loadDropoutSteps(f));
                assertTrue(msg.startsWith(f.toString()), msg);
            }
            Map<String, String> fractional = good();
            fractional.put("steps", "{\"net.0.fc\":5.5,\"net.1.fc\":5,\"net.2.fc\":5}");
            Path f1 = crafted("fractional", fractional, false);
            refused(IOException.class, "metadata steps is not a JSON object", () -> model.loadDropoutSteps(f1));
            Map<String, String> twice = good();
            twice.put("steps", "{\"net.0.fc\":5,\"net.0.fc\":6,\"net.1.fc\":5,\"net.2.fc\":5}");
            Path f2 = crafted("twice", twice, false);
            refused(IOException.class, "metadata steps is not a JSON object", () -> model.loadDropoutSteps(f2));
            Map<String, String> noSeed = good();
            noSeed.remove("seed");
            Path f3 = crafted("no-seed", noSeed, false);
            refused(IOException.class, "metadata key 'seed' is missing", () -> model.loadDropoutSteps(f3));
            Map<String, String> apart = good();
            apart.put("layer_ids", "{\"net.0.fc\":0,\"net.1.fc\":1}");
            Path f4 = crafted("apart", apart, false);
            refused(IOException.class, "layer_ids names modules [net.0.fc, net.1.fc] but steps names", () -> model.loadDropoutSteps(f4));
            Path f5 = crafted("tensor", good(), true);
            refused(IOException.class, "holds tensors [steps]", () -> model.loadDropoutSteps(f5));
            assertEquals(steps(0, 0, 0), model.dropoutSteps(), "no refused file changed a layer");
            assertNotEquals(0, Files.size(f5));
        }
    }
}
