package dev.rslora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import dev.rslora.testing.SharedData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Interoperability with a real adapter written by Hugging Face PEFT (GPT-2 sequence
 * classification, r = 8 on c_attn), read from the shared data folder, never copied into the repo.
 */
class PeftAdapterFileTest {
    private static Path adapter;

    @BeforeEach
    void locate() {
        Path folder = SharedData.peftGpt2Adapter();
        Assumptions.assumeTrue(folder != null, SharedData::whyAbsent);
        adapter = folder.resolve("adapter_model.safetensors");
    }

    @Test
    void readsThePeftAdapter() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(adapter, arena);
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(25, f.entries().size());
            int loraA = 0;
            int loraB = 0;
            for (SafetensorsEntry e : f.entries()) {
                assertEquals(SafetensorsDtype.F32, e.dtype(), e.name());
                if (e.name().endsWith(".lora_A.weight")) {
                    assertArrayEquals(new long[]{8, 768}, e.shape(), e.name());
                    loraA++;
                } else if (e.name().endsWith(".lora_B.weight")) {
                    assertArrayEquals(new long[]{2304, 8}, e.shape(), e.name());
                    loraB++;
                } else {
                    assertEquals("base_model.model.score.weight", e.name());
                    assertArrayEquals(new long[]{6, 768}, e.shape());
                }
            }
            assertEquals(12, loraA);
            assertEquals(12, loraB);
            assertTrue(f.contains("base_model.model.transformer.h.11.attn.c_attn.lora_B.weight"));
            Tensor head = f.tensor("base_model.model.score.weight");
            assertEquals(DType.F32, head.dtype());
            assertTrue(head.segment().isMapped());
            double sumSq = 0;
            for (float v : head.toFloatArray()) {
                assertTrue(Float.isFinite(v));
                sumSq += (double) v * v;
            }
            assertTrue(sumSq > 0, "a trained head is not all zeros");
        }
    }

    @Test
    void rewritingWithOurWriterGivesIdenticalTensorsAndBytes(@TempDir Path dir) throws Exception {
        Path copy = dir.resolve("adapter_model.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile original = SafetensorsFile.open(adapter, arena);
            SafetensorsWriter w = new SafetensorsWriter().metadata(original.metadata());
            for (String name : original.names()) {
                w.add(name, original.tensor(name));
            }
            w.write(copy);
            SafetensorsFile again = SafetensorsFile.open(copy, arena);
            assertEquals(original.names(), again.names());
            assertEquals(original.metadata(), again.metadata());
            for (SafetensorsEntry e : original.entries()) {
                Tensor a = original.tensor(e.name());
                Tensor b = again.tensor(e.name());
                assertArrayEquals(a.shape(), b.shape(), e.name());
                assertEquals(-1, a.segment().mismatch(b.segment()), e.name());
            }
            // PEFT wrote it with the reference writer; ours reproduces its layout exactly.
            assertEquals(original.headerLength(), again.headerLength());
            assertEquals(-1, original.mapping().mismatch(again.mapping()), "the rewritten file is byte-identical");
        }
    }
}
