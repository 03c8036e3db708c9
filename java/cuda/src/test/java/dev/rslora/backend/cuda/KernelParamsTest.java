package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Java packing of every params struct against the static_asserts of cuda/rslora_params.h. */
class KernelParamsTest {
    private static final Path HEADER = Path.of("../..", "cuda", "rslora_params.h");
    private static final Pattern OFFSET = Pattern.compile("static_assert\\(offsetof\\((\\w+),\\s*(\\w+)\\)\\s*==\\s*(\\d+)");
    private static final Pattern SIZE = Pattern.compile("static_assert\\(sizeof\\((\\w+)\\)\\s*==\\s*(\\d+)");

    @Test
    void everyOffsetAndSizeMatchesTheHeader() throws IOException {
        String h = Files.readString(HEADER);
        Map<String, CStruct> byName = new HashMap<>();
        KernelParams.ALL.forEach(s -> byName.put(s.name(), s));
        Set<String> sized = new HashSet<>();
        Matcher m = SIZE.matcher(h);
        while (m.find()) {
            CStruct s = byName.get(m.group(1));
            assertTrue(s != null, "struct " + m.group(1) + " of " + HEADER + " has no Java layout in KernelParams");
            assertEquals(Integer.parseInt(m.group(2)), s.size(), "sizeof(" + s.name() + ")");
            sized.add(s.name());
        }
        assertEquals(byName.keySet(), sized, "every Java layout has a sizeof static_assert in the header");
        int offsets = 0;
        m = OFFSET.matcher(h);
        while (m.find()) {
            CStruct s = byName.get(m.group(1));
            assertTrue(s != null, "no Java layout for " + m.group(1));
            assertEquals(Integer.parseInt(m.group(3)), s.memberOffset(m.group(2)), "offsetof(" + s.name() + ", " + m.group(2) + ")");
            offsets++;
        }
        assertTrue(offsets >= 60, "expected every field asserted, found " + offsets);
    }

    @Test
    void everyJavaLeafFieldIsAssertedInTheHeader() throws IOException {
        String h = Files.readString(HEADER);
        for (CStruct s : KernelParams.ALL) {
            for (CStruct.Field f : s.fields()) {
                String top = f.name().contains(".") ? f.name().substring(0, f.name().indexOf('.')) : f.name();
                assertTrue(h.contains("offsetof(" + s.name() + ", " + top + ")"),
                        s.name() + "." + top + " has no offsetof static_assert in " + HEADER);
            }
        }
    }

    @Test
    void packerRefusesUnsetFieldsAndWrongKinds() {
        CStruct.Packer p = KernelParams.MERGE.packer().ptr("w", 1).ptr("lora_b", 2).ptr("lora_a", 3).i32("d_out", 4).i32("d_in", 5);
        IllegalStateException e = assertThrows(IllegalStateException.class, p::bytes);
        assertTrue(e.getMessage().contains("r") && e.getMessage().contains("signed_gamma"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KernelParams.MERGE.packer().f32("w", 1f));
        assertThrows(IllegalArgumentException.class, () -> KernelParams.MERGE.packer().i32("nope", 1));
    }

    @Test
    void packsLittleEndianAtTheDeclaredOffsets() {
        byte[] b = KernelParams.FORWARD.packer()
                .ptr("x", 0x1122334455667788L).ptr("w", 2).ptr("bias", 0).ptr("u", 4).ptr("lora_b", 5).ptr("y", 6)
                .i32("n", 7).i32("d_in", 8).i32("d_out", 9).i32("r", 10).f32("gamma", 2.5f).bytes();
        assertEquals(72, b.length);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x88, b[0] & 0xFF);
        assertEquals(0x1122334455667788L, bb.getLong(0));
        assertEquals(0L, bb.getLong(16));
        assertEquals(10, bb.getInt(60));
        assertEquals(2.5f, bb.getFloat(64));
        assertEquals(0, bb.getInt(68), "tail padding is zero");
    }

    @Test
    void dropoutFieldsAreTheMasksOwnNumbers() {
        long seed = 0x0123_4567_89AB_CDEFL;
        DropoutMask mask = new DropoutMask(seed, 0x1_0000_0005L, 9, 0.1f);
        CStruct.Packer p = KernelParams.DOWN.packer().ptr("x", 1).ptr("lora_a", 2).ptr("u", 3).i32("n", 1).i32("d_in", 1).i32("r", 1);
        KernelParams.dropout(p, "drop", mask, seed, 0x1_0000_0005L, 9);
        ByteBuffer bb = ByteBuffer.wrap(p.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        int d = KernelParams.DOWN.memberOffset("drop");
        assertEquals(0x89AB_CDEF, bb.getInt(d));
        assertEquals(0x0123_4567, bb.getInt(d + 4));
        assertEquals(9, bb.getInt(d + 8));
        assertEquals(5, bb.getInt(d + 12), "low 32 bits of the step");
        assertEquals(mask.threshold(), bb.getInt(d + 16));
        assertEquals(1677722, bb.getInt(d + 16), "ceil(0.1f * 2^24)");
        assertEquals(mask.scale(), bb.getFloat(d + 20));
        assertEquals(1, bb.getInt(d + 24));

        CStruct.Packer off = KernelParams.DOWN.packer().ptr("x", 1).ptr("lora_a", 2).ptr("u", 3).i32("n", 1).i32("d_in", 1).i32("r", 1);
        KernelParams.dropout(off, "drop", null, seed, 1, 0);
        assertEquals(0, ByteBuffer.wrap(off.bytes()).order(ByteOrder.LITTLE_ENDIAN).getInt(d + 24), "disabled");
    }

    @Test
    void versionTwoIsOptInAndOnlyForSixteenBitGemms() {
        assertEquals(1, LoraKernels.parseVersion("v1"));
        assertEquals(2, LoraKernels.parseVersion(" V2 "));
        assertThrows(IllegalArgumentException.class, () -> LoraKernels.parseVersion("v3"));
        assertEquals(1, LoraKernels.gemmVersion(1, dev.rslora.tensor.DType.BF16));
        assertEquals(2, LoraKernels.gemmVersion(2, dev.rslora.tensor.DType.BF16));
        assertEquals(2, LoraKernels.gemmVersion(2, dev.rslora.tensor.DType.F16));
        assertEquals(1, LoraKernels.gemmVersion(2, dev.rslora.tensor.DType.F32), "no f32 tensor-core kernel");
        assertEquals("rslora_lora_forward_v2_bf16", LoraKernels.kernelName("lora_forward", 2, dev.rslora.tensor.DType.BF16));
    }

    @Test
    void kernelNamesFollowTheExportScheme() {
        assertEquals("rslora_lora_down_v1_bf16", LoraKernels.kernelName("lora_down", dev.rslora.tensor.DType.BF16));
        assertEquals("rslora_convert_f32_to_f16", LoraKernels.convertName(dev.rslora.tensor.DType.F32, dev.rslora.tensor.DType.F16));
        assertThrows(IllegalArgumentException.class,
                () -> LoraKernels.convertName(dev.rslora.tensor.DType.BF16, dev.rslora.tensor.DType.F16));
    }

    @Test
    void everyLaunchedKernelNameIsExportedByTheSource() throws IOException {
        StringBuilder src = new StringBuilder();
        try (var files = Files.list(Path.of("../..", "cuda", "kernels"))) {
            for (Path f : files.toList()) {
                src.append(Files.readString(f));
            }
        }
        String all = src.toString();
        for (String family : new String[] {"lora_down", "lora_forward", "lora_backward_vdb", "lora_backward_da",
                "lora_backward_dx", "lora_merge", "dropout_apply", "dropout_add"}) {
            assertTrue(all.contains("RS_EXPORT_DTYPES(" + family + "_v1,"), family + "_v1 is not exported per dtype");
        }
        assertTrue(all.contains("void __launch_bounds__(rs::kThreads) rslora_reduce_groups_v1("));
        for (String family : new String[] {"lora_forward", "lora_backward_dx"}) {
            assertTrue(all.contains("RS_EXPORT_V2(" + family + "_v2,"), family + "_v2 is not exported");
        }
        for (String c : new String[] {"f32_to_bf16", "f32_to_f16", "bf16_to_f32", "f16_to_f32"}) {
            assertTrue(all.contains("rslora_convert_" + c + "("), c);
        }
    }
}
