package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cuBLASLt binding ({@link CublasLt}) against a stub libcublasLt (C, built here with cc; its own
 * soname, loaded by path, so no real library is shadowed): every call, its arguments and the order,
 * the plan and algorithm caches, the heuristic's choice under the workspace limit, the bias
 * epilogue, and the error paths (a failing status names the call and the status; no algorithm
 * names the shape). The stub's heuristic returns algorithms whose first 8 bytes are 0xA100 + index.
 */
class CublasLtStubTest {
    private static final String STUB = """
            static int rs_heur_count = 2;
            static long rs_heur_ws0 = 1024;
            static uintptr_t rs_next = 0x1000;
            void rs_stub_heuristic(int count, long ws0) { rs_heur_count = count; rs_heur_ws0 = ws0; }
            void rs_stub_reset_extra(void) { rs_next = 0x1000; }
            int cublasLtCreate(void** h) { *h = (void*)0x17; rs_log("create"); return rs_fails("create") ? 7 : 0; }
            int cublasLtDestroy(void* h) { rs_log("destroy %p", h); return 0; }
            int cublasLtMatmulDescCreate(void** d, int compute, int scale) {
                *d = (void*)(rs_next += 0x10); rs_log("descCreate %p compute=%d scale=%d", *d, compute, scale); return rs_fails("descCreate") ? 15 : 0; }
            int cublasLtMatmulDescDestroy(void* d) { rs_log("descDestroy %p", d); return 0; }
            int cublasLtMatmulDescSetAttribute(void* d, int attr, const void* buf, size_t size) {
                if (size == 4) rs_log("descSet %p attr=%d %d", d, attr, *(const int*)buf);
                else rs_log("descSet %p attr=%d %p", d, attr, *(void* const*)buf);
                return 0; }
            int cublasLtMatrixLayoutCreate(void** l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
                *l = (void*)(rs_next += 0x10); rs_log("layoutCreate %p type=%d %llux%llu ld=%lld", *l, type,
                    (unsigned long long)rows, (unsigned long long)cols, (long long)ld); return 0; }
            int cublasLtMatrixLayoutDestroy(void* l) { rs_log("layoutDestroy %p", l); return 0; }
            int cublasLtMatmulPreferenceCreate(void** p) { *p = (void*)0x9000; rs_log("prefCreate"); return 0; }
            int cublasLtMatmulPreferenceDestroy(void* p) { rs_log("prefDestroy %p", p); return 0; }
            int cublasLtMatmulPreferenceSetAttribute(void* p, int attr, const void* buf, size_t size) {
                if (size == 8) rs_log("prefSet attr=%d %lld", attr, *(const long long*)buf);
                else rs_log("prefSet attr=%d %d", attr, *(const int*)buf);
                return 0; }
            typedef struct { uint64_t data[8]; size_t workspaceSize; int state; float waves; int reserved[4]; } Heur;
            int cublasLtMatmulAlgoGetHeuristic(void* h, void* d, void* a, void* b, void* c, void* dd, void* pref, int req,
                                               Heur* out, int* returned) {
                rs_log("heuristic %p %p A=%p B=%p C=%p D=%p pref=%p req=%d", h, d, a, b, c, dd, pref, req);
                int n = rs_heur_count < req ? rs_heur_count : req;
                for (int i = 0; i < n; ++i) {
                    memset(&out[i], 0, sizeof out[i]);
                    out[i].data[0] = 0xA100 + i;
                    out[i].workspaceSize = i == 0 ? (size_t)rs_heur_ws0 : 0;
                }
                *returned = n;
                return rs_fails("heuristic") ? 15 : 0; }
            int cublasLtMatmul(void* h, void* d, const float* alpha, const void* A, void* al, const void* B, void* bl,
                               const float* beta, const void* C, void* cl, void* D, void* dl, const uint64_t* algo,
                               void* ws, size_t wsSize, void* stream) {
                rs_log("matmul %p %p alpha=%g A=%p %p B=%p %p beta=%g C=%p %p D=%p %p algo=%llx ws=%p %zu stream=%p",
                       h, d, *alpha, A, al, B, bl, *beta, C, cl, D, dl, (unsigned long long)algo[0], ws, wsSize, stream);
                return rs_fails("matmul") ? 13 : 0; }
            """;
    static final long STREAM = 0xABC000L;
    static final long A = 0x7000_0000_1000L;
    static final long B = 0x7000_0000_2000L;
    static final long C = 0x7000_0000_3000L;
    static final long BIAS = 0x7000_0000_4000L;
    static final long WS = 0x7000_0001_0000L;

    private static NativeStub stub;
    private static String skipped;
    private CachingAllocator memory;

    @BeforeAll
    static void build() throws Exception {
        String[] why = new String[1];
        stub = NativeStub.build(Path.of("target", "native-stubs").toAbsolutePath(), "libcublasLt-stub.so", STUB, why);
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
        heuristic(2, 1024);
        memory = new CachingAllocator(new Fixed(A, B, C, BIAS, WS));
    }

    private static void heuristic(int count, long ws0) {
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            java.lang.foreign.Linker l = java.lang.foreign.Linker.nativeLinker();
            java.lang.foreign.SymbolLookup lookup = java.lang.foreign.SymbolLookup.libraryLookup(stub.path(), a);
            l.downcallHandle(lookup.find("rs_stub_heuristic").orElseThrow(), java.lang.foreign.FunctionDescriptor.ofVoid(
                    java.lang.foreign.ValueLayout.JAVA_INT, java.lang.foreign.ValueLayout.JAVA_LONG)).invoke(count, ws0);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Hands out the given addresses in turn as device blocks. */
    record Fixed(long... addresses) implements RawDeviceMemory {
        static int next;

        Fixed {
            next = 0;
        }

        @Override
        public RawBlock allocate(long bytes) {
            return new RawBlock(addresses[next++], bytes, null);
        }

        @Override
        public void free(RawBlock block) {
        }

        @Override
        public void fill(RawBlock block, long bytes, byte value) {
        }
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    @Test
    void theForwardGemmWithBiasMakesOnePlanAndReusesIt() {
        // Y [n=8, d_out=6] bf16 = X [8, 5] · W [6, 5]ᵀ + bias: column-major D (6 × 8) = op(W)ᵀ·X
        CublasGemm g = CublasGemm.baseForward(8, 5, 6);
        try (DeviceBuffer w = memory.allocate(60); DeviceBuffer x = memory.allocate(80); DeviceBuffer y = memory.allocate(96);
             DeviceBuffer bias = memory.allocate(12); DeviceBuffer ws = memory.allocate(4096)) {
            CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "stub device", ws);
            lt.matmul(g, DType.BF16, DType.BF16, w, x, y, bias, 1.0f, 0.0f);
            lt.matmul(g, DType.BF16, DType.BF16, w, x, y, bias, 1.0f, 0.0f);
            assertEquals(1, lt.planCount());
            lt.close();
        }
        List<String> calls = stub.calls();
        // the descriptor, its attributes, the layouts: A = W stored 5×6 (transa = T), B = X stored 5×8, C = D 6×8
        assertEquals("create", calls.get(0));
        assertEquals("descCreate 0x1010 compute=68 scale=0", calls.get(1));
        assertEquals("descSet 0x1010 attr=3 1", calls.get(2));
        assertEquals("descSet 0x1010 attr=4 0", calls.get(3));
        assertEquals("descSet 0x1010 attr=7 4", calls.get(4), "BIAS epilogue");
        assertEquals("layoutCreate 0x1020 type=14 5x6 ld=5", calls.get(5));
        assertEquals("layoutCreate 0x1030 type=14 5x8 ld=5", calls.get(6));
        assertEquals("layoutCreate 0x1040 type=14 6x8 ld=6", calls.get(7));
        // (the fixed addresses are 4096-aligned)
        // the heuristic: workspace limit, no in-place (atomic) split-K, 256-byte alignment of every pointer
        assertEquals(List.of("prefCreate", "prefSet attr=1 4096", "prefSet attr=3 6", "prefSet attr=5 256", "prefSet attr=6 256",
                "prefSet attr=7 256", "prefSet attr=8 256",
                "heuristic 0x17 0x1010 A=0x1020 B=0x1030 C=0x1040 D=0x1040 pref=0x9000 req=8", "prefDestroy 0x9000"),
                calls.subList(8, 17));
        String matmul = "matmul 0x17 0x1010 alpha=1 A=" + hex(A) + " 0x1020 B=" + hex(B) + " 0x1030 beta=0 C=" + hex(C)
                + " 0x1040 D=" + hex(C) + " 0x1040 algo=a100 ws=" + hex(WS) + " 4096 stream=" + hex(STREAM);
        assertEquals(List.of("descSet 0x1010 attr=8 " + hex(BIAS), matmul, "descSet 0x1010 attr=8 " + hex(BIAS), matmul),
                calls.subList(17, 21), "the second call reuses the plan: no new descriptor, no heuristic");
        assertEquals(List.of("layoutDestroy 0x1020", "layoutDestroy 0x1030", "layoutDestroy 0x1040", "descDestroy 0x1010",
                "destroy 0x17"), calls.subList(21, 26));
        assertEquals(26, calls.size(), calls.toString());
    }

    @Test
    void theAlgorithmIsCachedPerDeviceAcrossHandlesAndBetaOneAccumulates() {
        // dX [n=8, d_in=5] += 0.5 · dY [8, 6] · W [6, 5]: beta = 1, no bias, on a second handle of the same device
        CublasGemm g = CublasGemm.baseBackwardData(8, 5, 6);
        try (DeviceBuffer w = memory.allocate(60); DeviceBuffer dy = memory.allocate(96); DeviceBuffer dx = memory.allocate(80);
             DeviceBuffer unused = memory.allocate(1); DeviceBuffer ws = memory.allocate(4096)) {
            for (int handle = 0; handle < 2; handle++) {
                try (CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "stub device cached", ws)) {
                    lt.matmul(g, DType.BF16, DType.BF16, w, dy, dx, null, 0.5f, 1.0f);
                }
            }
        }
        List<String> calls = stub.calls();
        assertEquals(1, calls.stream().filter(c -> c.startsWith("heuristic")).count(), "one heuristic query for both handles: " + calls);
        assertEquals(2, calls.stream().filter(c -> c.startsWith("matmul")).count());
        assertTrue(calls.contains("descSet 0x1010 attr=7 1"), "DEFAULT epilogue without bias: " + calls);
        assertTrue(calls.stream().filter(c -> c.startsWith("matmul")).allMatch(c -> c.contains("alpha=0.5") && c.contains("beta=1")
                && c.contains("algo=a100")), calls.toString());
        // dX = dY·W: A = W stored 5×6 ld 5 (transa = N), B = dY stored 6×8 ld 6, C = 5×8 ld 5
        assertTrue(calls.contains("descSet 0x1010 attr=3 0") && calls.contains("layoutCreate 0x1020 type=14 5x6 ld=5")
                && calls.contains("layoutCreate 0x1030 type=14 6x8 ld=6") && calls.contains("layoutCreate 0x1040 type=14 5x8 ld=5"),
                calls.toString());
    }

    @Test
    void anAlgorithmNeedingMoreWorkspaceThanWeHaveIsPassedOver() {
        heuristic(3, 1 << 20);  // the first result wants 1 MiB, the workspace is 4 KiB: the second (0xa101) is used
        CublasGemm g = CublasGemm.baseForward(8, 5, 6);
        try (DeviceBuffer w = memory.allocate(60); DeviceBuffer x = memory.allocate(80); DeviceBuffer y = memory.allocate(96);
             DeviceBuffer unused = memory.allocate(1); DeviceBuffer ws = memory.allocate(4096);
             CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "stub device small workspace", ws)) {
            lt.matmul(g, DType.F16, DType.F32, w, x, y, null, 1.0f, 0.0f);
        }
        assertTrue(stub.calls().stream().anyMatch(c -> c.startsWith("matmul") && c.contains("algo=a101")), stub.calls().toString());
        assertTrue(stub.calls().contains("layoutCreate 0x1040 type=0 6x8 ld=6"), "F32 C layout: " + stub.calls());
    }

    @Test
    void errorsNameTheCallTheStatusAndTheShape() {
        CublasGemm g = CublasGemm.baseForward(8, 5, 6);
        try (DeviceBuffer w = memory.allocate(60); DeviceBuffer x = memory.allocate(80); DeviceBuffer y = memory.allocate(96);
             DeviceBuffer unused = memory.allocate(1); DeviceBuffer ws = memory.allocate(4096)) {
            heuristic(0, 0);
            try (CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "stub device none", ws)) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> lt.matmul(g, DType.BF16, DType.BF16, w, x, y, null, 1.0f, 0.0f));
                assertTrue(e.getMessage().contains("no algorithm") && e.getMessage().contains("m=6, n=8, k=5"), e.getMessage());
                assertEquals(0, lt.planCount(), "a failed plan is not kept");
            }
            // the failed plan's descriptor and layouts were destroyed
            List<String> calls = stub.calls();
            assertEquals(calls.stream().filter(c -> c.startsWith("layoutCreate")).count(),
                    calls.stream().filter(c -> c.startsWith("layoutDestroy")).count(), calls.toString());
            heuristic(2, 0);
            stub.reset("matmul");
            try (CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "stub device failing", ws)) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> lt.matmul(g, DType.BF16, DType.BF16, w, x, y, null, 1.0f, 0.0f));
                assertTrue(e.getMessage().startsWith("cublasLtMatmul(") && e.getMessage().endsWith("CUBLAS_STATUS_EXECUTION_FAILED"),
                        e.getMessage());
            }
            stub.reset("create");
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> new CublasLt(stub.path().toString(), STREAM, "stub device", ws));
            assertEquals("cublasLtCreate returned CUBLAS_STATUS_INVALID_VALUE", e.getMessage());
            stub.reset("");
            assertThrows(IllegalArgumentException.class, () -> {
                try (CublasLt lt = new CublasLt(stub.path().toString(), STREAM, "x", ws)) {
                    lt.matmul(g, DType.BF16, DType.F16, w, x, y, null, 1.0f, 0.0f);
                }
            });
        }
        IllegalStateException none = assertThrows(IllegalStateException.class, () -> new CublasLt(null, STREAM, "x", null));
        assertTrue(none.getMessage().startsWith("cuBLASLt not found"), none.getMessage());
    }

    @Test
    void alignmentAndStoredShapes() {
        assertEquals(256, CublasLt.alignment(0x1000, 0x7000_0000_0100L, 0));
        assertEquals(16, CublasLt.alignment(0x1000, 0x10010));
        assertEquals(2, CublasLt.alignment(0x1002));
        assertEquals(List.of(6L, 5L), java.util.Arrays.stream(CublasLt.storedShape(CublasGemm.OP_N, 6, 5)).boxed().toList());
        assertEquals(List.of(5L, 6L), java.util.Arrays.stream(CublasLt.storedShape(CublasGemm.OP_T, 6, 5)).boxed().toList());
    }
}
