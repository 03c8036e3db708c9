package dev.rslora.backend.cuda;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The libcuda functions bound through {@code java.lang.foreign} ({@link DriverFfm}) against a stub
 * libcuda (C, built here with cc, its own soname, loaded by path): cuTensorMapEncodeTiled's
 * arguments (dims innermost first, one row stride, box, element strides, swizzle, promotion, fill),
 * cuLaunchKernelEx's CUlaunchConfig (grid, block, dynamic shared memory, stream, the cluster
 * attribute) and its kernel-params array (the params struct, then each 128-byte tensor map),
 * cuFuncSetAttribute, and the error paths. Where the CUDA toolkit's cuda.h is installed, the
 * struct offsets and enum values are also checked against it.
 */
class DriverFfmTest {
    private static final String STUB = """
            typedef struct { unsigned gx, gy, gz, bx, by, bz, smem; void* stream; void* attrs; unsigned nattrs; } Cfg;
            typedef struct { unsigned id; unsigned pad; unsigned v[16]; } Attr;
            void rs_stub_reset_extra(void) { }
            int cuTensorMapEncodeTiled(unsigned char* map, int dtype, unsigned rank, void* base, const uint64_t* dims,
                                       const uint64_t* strides, const unsigned* box, const unsigned* es, int il, int sw, int l2, int oob) {
                rs_log("encode dtype=%d rank=%u base=%p dims=%llu,%llu stride=%llu box=%u,%u es=%u,%u il=%d sw=%d l2=%d oob=%d align=%d",
                       dtype, rank, base, (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)strides[0],
                       box[0], box[1], es[0], es[1], il, sw, l2, oob, (int)((uintptr_t)map % 128));
                for (int i = 0; i < 128; ++i) map[i] = (unsigned char)(dtype + i);
                return rs_fails("encode") ? 1 : 0; }
            int cuFuncSetAttribute(void* f, int attr, int value) { rs_log("setAttribute %p %d %d", f, attr, value); return 0; }
            int cuLaunchKernelEx(const Cfg* c, void* f, void** args, void** extra) {
                char buf[512]; int o = 0;
                o += snprintf(buf + o, sizeof buf - o, "launch %p grid=%u,%u,%u block=%u,%u,%u smem=%u stream=%p nattrs=%u",
                              f, c->gx, c->gy, c->gz, c->bx, c->by, c->bz, c->smem, c->stream, c->nattrs);
                for (unsigned i = 0; i < c->nattrs; ++i) {
                    const Attr* a = (const Attr*)c->attrs + i;
                    o += snprintf(buf + o, sizeof buf - o, " attr%u=%u:%u,%u,%u", i, a->id, a->v[0], a->v[1], a->v[2]);
                }
                const unsigned char* p = (const unsigned char*)args[0];
                o += snprintf(buf + o, sizeof buf - o, " params=%02x%02x%02x%02x", p[0], p[1], p[2], p[3]);
                int nmaps = p[0] == 1 ? 2 : 0; /* the test's convention: params starting with 1 come with two maps */
                for (int i = 1; i <= nmaps; ++i) {
                    const unsigned char* m = (const unsigned char*)args[i];
                    o += snprintf(buf + o, sizeof buf - o, " map%d=%d,%d,%d", i, m[0], m[127], (int)((uintptr_t)m % 128));
                }
                o += snprintf(buf + o, sizeof buf - o, " extra=%p", (void*)extra);
                rs_log("%s", buf);
                return rs_fails("launch") ? 701 : 0; }
            """;

    private static NativeStub stub;
    private static String skipped;

    @BeforeAll
    static void build() throws Exception {
        String[] why = new String[1];
        stub = NativeStub.build(Path.of("target", "native-stubs").toAbsolutePath(), "libcuda-stub.so", STUB, why);
        skipped = why[0];
    }

    @AfterAll
    static void unload() {
        if (stub != null) {
            stub.close();
        }
    }

    @BeforeEach
    void fresh() {
        Assumptions.assumeTrue(stub != null, () -> "skipped: " + skipped);
        stub.reset("");
    }

    @Test
    void encodesA2dRowMajorTensorInnermostFirst() {
        try (DriverFfm d = new DriverFfm(stub.path().toString())) {
            // W [d_out = 4096, d_in = 4096] bf16 for the v3 forward: box {64, 256}, 128-byte swizzle
            DriverFfm.TensorMap m = d.encode(DriverFfm.TMA_BFLOAT16, 2, 0x7f00_0000_0000L, 4096, 4096, 8192, 64, 256,
                    DriverFfm.TMA_SWIZZLE_128B);
            assertEquals((byte) 9, m.bytes()[0]);
            assertEquals((byte) (9 + 127), m.bytes()[127]);
            assertEquals(List.of("encode dtype=9 rank=2 base=0x7f0000000000 dims=4096,4096 stride=8192 box=64,256 es=1,1 il=0 sw=3 "
                    + "l2=3 oob=0 align=0"), stub.calls());
        }
    }

    @Test
    void refusesWhatTmaCannotTakeBeforeCallingTheDriver() {
        try (DriverFfm d = new DriverFfm(stub.path().toString())) {
            // a row of 1001 bf16 = 2002 bytes: not a multiple of 16
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> d.encode(DriverFfm.TMA_BFLOAT16, 2, 0x1000, 1001, 64, 2002, 64, 64, DriverFfm.TMA_SWIZZLE_128B));
            assertTrue(e.getMessage().contains("row stride 2002 bytes"), e.getMessage());
            assertTrue(stub.calls().isEmpty(), "the driver was not called: " + stub.calls());
            assertTrue(DriverFfm.refusal(0x1008, 64, 64, 128, 2, 64, 64, 3).contains("not 16-byte aligned"));
            assertTrue(DriverFfm.refusal(0x1000, 64, 64, 256, 4, 64, 64, 3).contains("exceeds the 128-byte swizzle span"),
                    "an f32 box of 64 is 256 bytes");
            assertTrue(DriverFfm.refusal(0x1000, 64, 64, 128, 2, 64, 257, 3).contains("outside 1..256"));
            assertNull(DriverFfm.refusal(0x1000, 4096, 8192, 8192, 2, 64, 128, 3));
            stub.reset("encode");
            IllegalStateException s = assertThrows(IllegalStateException.class,
                    () -> d.encode(DriverFfm.TMA_FLOAT16, 2, 0x1000, 64, 64, 128, 64, 64, DriverFfm.TMA_SWIZZLE_128B));
            assertTrue(s.getMessage().startsWith("cuTensorMapEncodeTiled(dtype 6") && s.getMessage().endsWith("CUDA_ERROR_INVALID_VALUE"),
                    s.getMessage());
        }
    }

    @Test
    void launchesWithDynamicSharedMemoryAClusterAndTensorMapParams() {
        try (DriverFfm d = new DriverFfm(stub.path().toString())) {
            DriverFfm.TensorMap x = d.encode(DriverFfm.TMA_BFLOAT16, 2, 0x1000, 64, 128, 128, 64, 128, DriverFfm.TMA_SWIZZLE_128B);
            DriverFfm.TensorMap w = d.encode(DriverFfm.TMA_FLOAT16, 2, 0x2000, 64, 256, 128, 64, 256, DriverFfm.TMA_SWIZZLE_128B);
            stub.reset("");
            d.setAttribute(0xF00, DriverFfm.FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES, 215040);
            d.launch(0xF00, new LaunchGeometry.Grid(132, 1, 1), 384, 215040, new DriverFfm.Cluster(2, 1, 1), 0xABC000L,
                    new byte[] {1, 2, 3, 4, 5}, List.of(x, w));
            d.launch(0xF08, new LaunchGeometry.Grid(7, 3, 2), 256, 0, DriverFfm.Cluster.NONE, 0xABC000L, new byte[] {9, 8, 7, 6},
                    List.of());
            assertEquals(List.of("setAttribute 0xf00 8 215040",
                    "launch 0xf00 grid=132,1,1 block=384,1,1 smem=215040 stream=0xabc000 nattrs=1 attr0=4:2,1,1 params=01020304 "
                            + "map1=9,136,0 map2=6,133,0 extra=(nil)",
                    "launch 0xf08 grid=7,3,2 block=256,1,1 smem=0 stream=0xabc000 nattrs=0 params=09080706 extra=(nil)"),
                    stub.calls());
            stub.reset("launch");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> d.launch(0xF00,
                    new LaunchGeometry.Grid(1, 1, 1), 32, 0, DriverFfm.Cluster.NONE, 0, new byte[4], List.of()));
            assertTrue(e.getMessage().endsWith("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new DriverFfm.Cluster(0, 1, 1));
        assertEquals(new DriverFfm.Cluster(2, 1, 1), DriverFfm.Cluster.parse("2x1x1"));
    }

    @Test
    void layoutsAndEnumsMatchCudaH() throws Exception {
        Path header = Path.of("/usr/local/cuda/include/cuda.h");
        Assumptions.assumeTrue(Files.exists(header), "no cuda.h here");
        Path dir = Files.createDirectories(Path.of("target", "native-stubs").toAbsolutePath());
        Path src = dir.resolve("cuda_layout.c");
        Files.writeString(src, """
                #include <cuda.h>
                #include <stdio.h>
                #include <stddef.h>
                int main(void) {
                    printf("%zu %zu %zu %zu %zu %zu %zu\\n", sizeof(CUlaunchConfig), offsetof(CUlaunchConfig, blockDimX),
                           offsetof(CUlaunchConfig, sharedMemBytes), offsetof(CUlaunchConfig, hStream),
                           offsetof(CUlaunchConfig, attrs), offsetof(CUlaunchConfig, numAttrs), sizeof(CUlaunchAttribute));
                    printf("%zu %zu %zu\\n", offsetof(CUlaunchAttribute, value), sizeof(CUtensorMap), offsetof(CUlaunchAttributeValue, clusterDim));
                    printf("%d %d %d %d %d %d %d %d %d %d %d\\n", CU_TENSOR_MAP_DATA_TYPE_FLOAT16, CU_TENSOR_MAP_DATA_TYPE_FLOAT32,
                           CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
                           CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                           CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
                    return 0;
                }
                """);
        Path exe = dir.resolve("cuda_layout");
        Process cc = new ProcessBuilder("cc", "-I" + header.getParent(), "-o", exe.toString(), src.toString()).redirectErrorStream(true)
                .start();
        String ccOut = new String(cc.getInputStream().readAllBytes());
        Assumptions.assumeTrue(cc.waitFor(60, TimeUnit.SECONDS) && cc.exitValue() == 0, () -> "cannot compile against cuda.h: " + ccOut);
        Process run = new ProcessBuilder(exe.toString()).redirectErrorStream(true).start();
        List<String> lines = new String(run.getInputStream().readAllBytes()).lines().toList();
        run.waitFor(30, TimeUnit.SECONDS);
        assertEquals(DriverFfm.CONFIG_BYTES + " 12 24 32 40 48 " + DriverFfm.ATTRIBUTE_BYTES, lines.get(0));
        assertEquals("8 " + DriverFfm.TENSOR_MAP_BYTES + " 0", lines.get(1));
        assertEquals(DriverFfm.TMA_FLOAT16 + " " + DriverFfm.TMA_FLOAT32 + " " + DriverFfm.TMA_BFLOAT16 + " " + DriverFfm.TMA_INTERLEAVE_NONE
                + " " + DriverFfm.TMA_SWIZZLE_NONE + " " + DriverFfm.TMA_SWIZZLE_128B + " " + DriverFfm.TMA_L2_PROMOTION_256B + " "
                + DriverFfm.TMA_OOB_FILL_NONE + " " + DriverFfm.FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES + " "
                + DriverFfm.FUNC_NON_PORTABLE_CLUSTER_SIZE_ALLOWED + " " + DriverFfm.LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, lines.get(2));
    }
}
