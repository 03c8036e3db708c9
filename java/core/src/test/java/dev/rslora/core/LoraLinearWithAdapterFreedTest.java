package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.ForwardingBackend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.model.LoraModel;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * withAdapter (and AdapterSet.layer) with a lora_A or lora_B whose memory was freed: refused before
 * the layer allocates anything, naming the tensor; a copy that fails anyway closes the half-built layer.
 */
class LoraLinearWithAdapterFreedTest {
    @TempDir
    Path tmp;

    /** Counts the backend's prepare calls and the closes of the weights it prepared. */
    private static final class Counting implements ForwardingBackend {
        final Backend inner = new ReferenceBackend();
        final AtomicInteger prepared = new AtomicInteger();
        final AtomicInteger closed = new AtomicInteger();
        Runnable afterPrepare = () -> { };

        @Override
        public Backend inner() {
            return inner;
        }

        @Override
        public FrozenWeight prepare(Tensor weight, Tensor bias) {
            FrozenWeight fw = inner.prepare(weight, bias);
            prepared.incrementAndGet();
            afterPrepare.run();
            return new FrozenWeight() {
                @Override
                public Tensor weight() {
                    return fw.weight();
                }

                @Override
                public Tensor bias() {
                    return fw.bias();
                }

                @Override
                public void close() {
                    closed.incrementAndGet();
                    fw.close();
                }
            };
        }
    }

    private static Tensor freed(DType dt, long... shape) {
        Arena a = Arena.ofShared();
        Tensor t = Tensor.allocate(a, dt, shape);
        a.close();
        return t;
    }

    @Test
    void aFreedLoraAOrLoraBIsNamedAndNothingIsPrepared() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 6);
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 6);
            Tensor b = Tensor.allocate(arena, DType.F32, 4, 2);
            Counting backend = new Counting();
            LoraConfig config = LoraConfig.rslora(2, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LoraLinear.withAdapter(w, null, freed(DType.F32, 2, 6), b, config, backend, 0));
            assertTrue(e.getMessage().startsWith("lora_A [2, 6]") && e.getMessage().contains("arena is closed"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> LoraLinear.withAdapter(w, null, a, freed(DType.BF16, 4, 2), config, backend, 0));
            assertTrue(e.getMessage().startsWith("lora_B [4, 2]") && e.getMessage().contains("arena is closed"), e.getMessage());
            assertEquals(0, backend.prepared.get(), "refused before the backend prepared W");
        }
    }

    @Test
    void aCopyThatFailsClosesTheHalfBuiltLayer() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 6);
            Tensor b = Tensor.allocate(arena, DType.F32, 4, 2);
            Arena aArena = Arena.ofShared();
            Tensor a = Tensor.allocate(aArena, DType.F32, 2, 6);
            Counting backend = new Counting();
            backend.afterPrepare = aArena::close;  // A freed after the checks, while the layer is being built
            assertThrows(IllegalStateException.class,
                    () -> LoraLinear.withAdapter(w, null, a, b, LoraConfig.rslora(2, 4), backend, 0));
            assertEquals(1, backend.prepared.get());
            assertEquals(1, backend.closed.get(), "the half-built layer's prepared weight must be closed");
        }
    }

    @Test
    void adapterSetLayerNamesTheModuleWhenItsArenaWasClosed() throws Exception {
        PeftConfig c = PeftConfig.builder().targetModules("q_proj").r(2).loraAlpha(4).build();
        Map<String, float[][]> weights = new LinkedHashMap<>();
        weights.put("model.q_proj.weight", new float[4][4]);
        Path dir = tmp.resolve("adapter");
        try (LoraModel m = LoraModel.wrapArrays(weights, c, new ReferenceBackend(), 0)) {
            m.save(dir);
        }
        AdapterSet set;
        try (Arena loaded = Arena.ofShared()) {
            set = AdapterSet.load(dir, loaded);
        }
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 4);
            Counting backend = new Counting();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> set.layer("model.q_proj", w, null, backend, 0, 0));
            assertTrue(e.getMessage().startsWith("module model.q_proj: lora_A [2, 4]") && e.getMessage().contains("arena is closed"),
                    e.getMessage());
            assertEquals(0, backend.prepared.get());
        }
    }
}
