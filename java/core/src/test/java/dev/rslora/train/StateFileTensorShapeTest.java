package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.rslora.testing.MetadataFiles.KEY;
import static dev.rslora.testing.MetadataFiles.canonicalCrc;
import static dev.rslora.testing.MetadataFiles.metadata;
import static dev.rslora.testing.MetadataFiles.rewrite;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tensor table of a state file is outside {@code metadata_crc32}: a shape rewritten in the header with the same
 * element count ([2,3] to [3,2], the JSON still valid, the offsets and the data unchanged) passes the safetensors
 * checks and every tensor CRC. Both state files refuse it through the parameter shapes in their checksummed
 * metadata ({@code shapes}), naming the file and the rewritten tensor, both when one tensor of a parameter is
 * rewritten and when all of them are (a consistent rewrite that no comparison between the tensors can see). AdamW
 * files without {@code shapes} (version 1, and the first version 2 writer's) still load; there only
 * {@code AdamW.load}'s comparison with the parameters catches a consistent rewrite.
 */
class StateFileTensorShapeTest {
    /** The two state files, each with one parameter "w" of shape [2,3] whose state tensors all have that shape. */
    enum Kind {
        ADAMW(List.of("w.exp_avg", "w.exp_avg_sq", "w.master")) {
            @Override
            void write(Path file) throws IOException {
                AdamWStateFile.write(new AdamWState(3, AdamWConfig.torchDefaults(), List.of(
                        new AdamWState.Entry("w", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6},
                                new float[] {6, 5, 4, 3, 2, 1}, new float[] {9, 8, 7, 6, 5, 4}),
                        new AdamWState.Entry("b", new long[] {4}, new float[] {1, 2, 3, 4}, new float[] {1, 1, 1, 1},
                                null))), file);
            }

            @Override
            long[] readShape(Path file) throws IOException {
                return AdamWStateFile.read(file).entries().get(0).shape();
            }
        },
        ADAFACTOR(List.of("w.exp_avg", "w.master")) {
            @Override
            void write(Path file) throws IOException {
                AdafactorStateFile.write(new AdafactorState(3, AdafactorConfig.trainer(3e-3).withBeta1(0.9), List.of(
                        new AdafactorState.Entry("w", new long[] {2, 3}, new float[] {1, 2}, new float[] {3, 4, 5}, null,
                                new float[] {1, 2, 3, 4, 5, 6}, new float[] {9, 8, 7, 6, 5, 4}),
                        new AdafactorState.Entry("b", new long[] {4}, null, null, new float[] {0.5f, 1, 2, 4},
                                new float[] {-1, 0, 1, 2}, null))), file);
            }

            @Override
            long[] readShape(Path file) throws IOException {
                return AdafactorStateFile.read(file).entries().get(0).shape();
            }
        };

        /** The tensors of "w" that have its shape [2,3]. */
        final List<String> tensors;

        Kind(List<String> tensors) {
            this.tensors = tensors;
        }

        abstract void write(Path file) throws IOException;

        abstract long[] readShape(Path file) throws IOException;
    }

    @TempDir
    Path dir;

    /** {@code src} with {@code "shape":[2,3]} of each of {@code tensors} rewritten to [3,2] in the header. */
    static Path flipShapes(Path src, Path dst, List<String> tensors) throws IOException {
        byte[] b = Files.readAllBytes(src);
        int n = (int) ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(b, 8, n, StandardCharsets.US_ASCII);
        for (String t : tensors) {
            String entry = "\"" + t + "\":{\"dtype\":\"F32\",\"shape\":[";
            int at = header.indexOf(entry);
            assertTrue(at >= 0 && header.indexOf(entry, at + 1) < 0, "one entry of " + t + " in " + header);
            int dims = at + entry.length();
            assertEquals("2,3]", header.substring(dims, dims + 4), t);
            b[8 + dims] = '3';
            b[8 + dims + 2] = '2';
        }
        Files.write(dst, b);
        return dst;
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void aShapeRewrittenInTheTensorTableIsRefusedNamingTheFileAndATensor(Kind kind) throws IOException {
        Path good = dir.resolve(kind + ".safetensors");
        kind.write(good);
        assertArrayEquals(new long[] {2, 3}, kind.readShape(good));
        List<List<String>> cases = new ArrayList<>();
        kind.tensors.forEach(t -> cases.add(List.of(t)));
        cases.add(kind.tensors);
        List<Executable> checks = new ArrayList<>();
        for (List<String> flipped : cases) {
            Path bad = flipShapes(good, dir.resolve(kind + "-" + String.join("-", flipped) + ".safetensors"), flipped);
            assertEquals(metadata(good), metadata(bad), "the metadata is unchanged");
            checks.add(() -> {
                IOException e = assertThrows(IOException.class, () -> kind.readShape(bad), flipped.toString());
                assertEquals(bad + ": tensor '" + flipped.get(0) + "' has shape [3, 2], expected [2, 3]", e.getMessage());
            });
        }
        assertAll(kind.toString(), checks);
    }

    /** An AdamW file as the first version 2 writer (c1a97c3) wrote it: no shapes, and the checksum of the rest. */
    private Path withoutShapes(Path src, Path dst) throws IOException {
        Map<String, String> meta = metadata(src);
        assertTrue(meta.remove("shapes") != null);
        meta.put(KEY, canonicalCrc(meta));
        return rewrite(src, dst, meta);
    }

    @Test
    void anAdamWFileWithoutShapesStillLoadsAndTheOptimizerRefusesAConsistentRewrite() throws IOException {
        Path good = dir.resolve("adamw.safetensors");
        Kind.ADAMW.write(good);
        Path old = withoutShapes(good, dir.resolve("adamw-no-shapes.safetensors"));
        assertArrayEquals(new long[] {2, 3}, Kind.ADAMW.readShape(old));
        // one rewritten tensor still differs from exp_avg, whose shape stands for the parameter's
        Path one = flipShapes(old, dir.resolve("one.safetensors"), List.of("w.exp_avg_sq"));
        IOException e = assertThrows(IOException.class, () -> Kind.ADAMW.readShape(one));
        assertEquals(one + ": tensor 'w.exp_avg_sq' has shape [3, 2], expected [2, 3]", e.getMessage());
        // all of them: the file alone cannot tell, the optimizer's parameters can
        Path all = flipShapes(old, dir.resolve("all.safetensors"), Kind.ADAMW.tensors);
        assertArrayEquals(new long[] {3, 2}, Kind.ADAMW.readShape(all));
        try (Arena arena = Arena.ofConfined()) {
            // w is 16-bit, so the optimizer keeps its master weights, as in the file
            List<Parameter> params = List.of(
                    new Parameter("w", Tensor.allocate(arena, DType.BF16, 2, 3), Tensor.allocate(arena, DType.BF16, 2, 3)),
                    new Parameter("b", Tensor.allocate(arena, DType.F32, 4), Tensor.allocate(arena, DType.F32, 4)));
            AdamW opt = new AdamW(params, AdamWConfig.torchDefaults());
            IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> opt.load(all));
            assertEquals("state parameter 'w' has shape [3, 2], the parameter [2, 3]", refused.getMessage());
            assertEquals(0, opt.stepCount(), "nothing restored");
            opt.load(old);
            assertEquals(3, opt.stepCount());
        }
    }

    @Test
    void anAdamWFileWhoseShapesLackAParameterIsRefused() throws IOException {
        Path good = dir.resolve("adamw.safetensors");
        Kind.ADAMW.write(good);
        Map<String, String> meta = metadata(good);
        assertEquals("{\"w\":[2,3],\"b\":[4]}", meta.get("shapes"));
        meta.put("shapes", "{\"w\":[2,3]}");
        meta.put(KEY, canonicalCrc(meta));
        Path bad = rewrite(good, dir.resolve("adamw-shapes-without-b.safetensors"), meta);
        IOException e = assertThrows(IOException.class, () -> Kind.ADAMW.readShape(bad));
        assertEquals(bad + ": metadata shapes has no entry for parameter 'b'", e.getMessage());
    }
}
