package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * cuBLASLt through {@code java.lang.foreign} (libcublasLt.so.13 or .so.12: the functions used have
 * the same C ABI in both): the two big GEMMs of the split step and of the frozen base, the way
 * PyTorch runs its matmuls on recent GPUs — a heuristic algorithm, a workspace, our stream.
 * <pre>
 *   D = alpha·op(A)·op(B) + beta·C (+ bias[m] broadcast over columns: the BIAS epilogue), column-major,
 *   geometry from {@link CublasGemm} (row-major callers use CublasGemm.rowMajor), fp32 accumulation
 *   (CUBLAS_COMPUTE_32F), alpha and beta fp32 on the host; C = D (in place) in every call here.
 * </pre>
 * One plan per (geometry, dtypes, epilogue, pointer alignment): the matmul descriptor and the four
 * layouts are made once, and the algorithm is the first that {@code cublasLtMatmulAlgoGetHeuristic}
 * returns for them with this workspace and without in-place (atomic) split-K reductions, so results
 * are bit-reproducible, cached per (plan, device) for the JVM, so a training loop
 * asks the heuristic once per layer shape. The workspace is one {@link DeviceBuffer} of the caller's
 * allocator (default 32 MiB, {@value #WORKSPACE_PROPERTY}; cuBLAS recommends 32 MiB on Hopper);
 * work is queued on the stream given at construction and never synchronised here, so a CUDA graph
 * may capture it (the heuristic runs on the host, before the first launch of a plan). Not
 * thread-safe: the backend serialises calls.
 */
final class CublasLt implements LtGemm, AutoCloseable {
    /**
     * Libraries tried in order (after {@value #PATH_PROPERTY} when set): the sonames through the
     * loader's search path, then the CUDA toolkit's default location.
     */
    static final String[] LIBRARIES = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
        "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12"};
    /** System property: an explicit path to libcublasLt. */
    static final String PATH_PROPERTY = "rslora.cublaslt.path";
    /** System property: the workspace in MiB (default 32). */
    static final String WORKSPACE_PROPERTY = "rslora.cublaslt.workspaceMiB";
    static final long DEFAULT_WORKSPACE_BYTES = 32L << 20;

    // cublasLtMatmulDescAttributes_t
    static final int DESC_TRANSA = 3;
    static final int DESC_TRANSB = 4;
    static final int DESC_EPILOGUE = 7;
    static final int DESC_BIAS_POINTER = 8;
    // cublasLtEpilogue_t
    static final int EPILOGUE_DEFAULT = 1;
    static final int EPILOGUE_BIAS = 4;
    // cublasLtMatmulPreferenceAttributes_t
    static final int PREF_MAX_WORKSPACE_BYTES = 1;
    static final int PREF_REDUCTION_SCHEME_MASK = 3;
    /**
     * cublasLtReductionScheme_t bits allowed: COMPUTE_TYPE (2) | OUTPUT_TYPE (4), not INPLACE (1), whose
     * split-K reduces with atomics in the output: results stay deterministic, as the step's contract asks.
     */
    static final int DETERMINISTIC_REDUCTIONS = 2 | 4;
    static final int PREF_MIN_ALIGNMENT_A = 5;
    static final int PREF_MIN_ALIGNMENT_B = 6;
    static final int PREF_MIN_ALIGNMENT_C = 7;
    static final int PREF_MIN_ALIGNMENT_D = 8;
    /** cudaDataType_t CUDA_R_32F: the scale type of CUBLAS_COMPUTE_32F. */
    static final int CUDA_R_32F = 0;
    /** sizeof(cublasLtMatmulAlgo_t): uint64_t data[8]. */
    static final int ALGO_BYTES = 64;
    /**
     * sizeof(cublasLtMatmulHeuristicResult_t): algo (64), size_t workspaceSize (8), cublasStatus_t
     * state (4), float wavesCount (4), int reserved[4] (16).
     */
    static final int HEURISTIC_BYTES = 96;
    static final int HEURISTIC_WORKSPACE_OFFSET = 64;
    static final int HEURISTIC_STATE_OFFSET = 72;
    /** Algorithms asked of the heuristic per plan (the first is used; the count is logged). */
    static final int REQUESTED_ALGOS = 8;
    /** Pointer alignment the heuristic is told about: the largest power of two ≤ 256 dividing every address. */
    static final int MAX_ALIGNMENT = 256;

    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;
    private static final java.lang.foreign.AddressLayout P = ValueLayout.ADDRESS;

    /** Heuristic choices per (device, plan) for the whole JVM: algorithm bytes and the workspace it needs. */
    private static final Map<String, byte[]> ALGOS = new ConcurrentHashMap<>();

    /** What one matmul is, as the plan cache sees it. */
    record PlanKey(CublasGemm g, DType ab, DType cd, boolean bias, int alignment) {
    }

    /** A made plan: descriptor, layouts A, B, C (= D), algorithm. */
    private record Plan(PlanKey key, MemorySegment desc, MemorySegment aLayout, MemorySegment bLayout, MemorySegment cLayout,
                        MemorySegment algo, long workspaceNeeded) {
    }

    private final Arena arena = Arena.ofShared();
    private final String library;
    private final String device;
    private final MemorySegment stream;
    private final DeviceBuffer workspace;
    private final MemorySegment handle;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private final MemorySegment biasSlot;
    private final Map<PlanKey, Plan> plans = new HashMap<>();
    private final Fn fn;
    private boolean closed;

    /** The downcall handles used. */
    private record Fn(MethodHandle destroy, MethodHandle descCreate, MethodHandle descDestroy, MethodHandle descSet,
                      MethodHandle layoutCreate, MethodHandle layoutDestroy, MethodHandle prefCreate, MethodHandle prefDestroy,
                      MethodHandle prefSet, MethodHandle heuristic, MethodHandle matmul) {
        static Fn bind(SymbolLookup lookup) {
            Linker l = Linker.nativeLinker();
            return new Fn(
                    l.downcallHandle(find(lookup, "cublasLtDestroy"), FunctionDescriptor.of(I, P)),
                    // cublasLtMatmulDescCreate(desc*, cublasComputeType_t, cudaDataType_t scaleType)
                    l.downcallHandle(find(lookup, "cublasLtMatmulDescCreate"), FunctionDescriptor.of(I, P, I, I)),
                    l.downcallHandle(find(lookup, "cublasLtMatmulDescDestroy"), FunctionDescriptor.of(I, P)),
                    // cublasLtMatmulDescSetAttribute(desc, attr, const void* buf, size_t size)
                    l.downcallHandle(find(lookup, "cublasLtMatmulDescSetAttribute"), FunctionDescriptor.of(I, P, I, P, J)),
                    // cublasLtMatrixLayoutCreate(layout*, cudaDataType, uint64_t rows, uint64_t cols, int64_t ld)
                    l.downcallHandle(find(lookup, "cublasLtMatrixLayoutCreate"), FunctionDescriptor.of(I, P, I, J, J, J)),
                    l.downcallHandle(find(lookup, "cublasLtMatrixLayoutDestroy"), FunctionDescriptor.of(I, P)),
                    l.downcallHandle(find(lookup, "cublasLtMatmulPreferenceCreate"), FunctionDescriptor.of(I, P)),
                    l.downcallHandle(find(lookup, "cublasLtMatmulPreferenceDestroy"), FunctionDescriptor.of(I, P)),
                    l.downcallHandle(find(lookup, "cublasLtMatmulPreferenceSetAttribute"), FunctionDescriptor.of(I, P, I, P, J)),
                    // cublasLtMatmulAlgoGetHeuristic(handle, desc, A, B, C, D, pref, int requested, result[], int* returned)
                    l.downcallHandle(find(lookup, "cublasLtMatmulAlgoGetHeuristic"),
                            FunctionDescriptor.of(I, P, P, P, P, P, P, P, I, P, P)),
                    // cublasLtMatmul(handle, desc, alpha*, A, Adesc, B, Bdesc, beta*, C, Cdesc, D, Ddesc, algo*,
                    //                workspace, size_t workspaceSize, cudaStream_t)
                    l.downcallHandle(find(lookup, "cublasLtMatmul"),
                            FunctionDescriptor.of(I, P, P, P, P, P, P, P, P, P, P, P, P, P, P, J, P)));
        }
    }

    /** Null when no libcublasLt loads here, else the name or path that does. */
    static String findLibrary() {
        List<String> candidates = new ArrayList<>();
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.isBlank()) {
            candidates.add(explicit);
        }
        candidates.addAll(List.of(LIBRARIES));
        for (String lib : candidates) {
            try (Arena a = Arena.ofConfined()) {
                SymbolLookup.libraryLookup(lib, a);
                return lib;
            } catch (IllegalArgumentException e) {
                // try the next
            }
        }
        return null;
    }

    /** The workspace size: {@value #WORKSPACE_PROPERTY} MiB, default 32 MiB. */
    static long workspaceBytes() {
        String v = System.getProperty(WORKSPACE_PROPERTY);
        if (v == null || v.isBlank()) {
            return DEFAULT_WORKSPACE_BYTES;
        }
        try {
            long mib = Long.parseLong(v.strip());
            if (mib >= 0 && mib <= 4096) {
                return mib << 20;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new IllegalArgumentException("-D" + WORKSPACE_PROPERTY + "=" + v + ": expected MiB in 0..4096");
    }

    /**
     * Opens cuBLASLt from {@code library} (a soname or path, see {@link #findLibrary}) on the stream
     * whose raw handle is {@code streamAddress}, for the device named {@code device} (the algorithm
     * cache key), with {@code workspace} (owned by the caller, may be null for none).
     */
    CublasLt(String library, long streamAddress, String device, DeviceBuffer workspace) {
        if (library == null) {
            arena.close();
            throw new IllegalStateException("cuBLASLt not found: none of " + String.join(", ", LIBRARIES) + " loads");
        }
        this.library = library;
        this.device = device;
        this.stream = MemorySegment.ofAddress(streamAddress);
        this.workspace = workspace;
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(library, arena);
            this.fn = Fn.bind(lookup);
            MethodHandle create = Linker.nativeLinker().downcallHandle(find(lookup, "cublasLtCreate"), FunctionDescriptor.of(I, P));
            MemorySegment slot = arena.allocate(P);
            check("cublasLtCreate", call(create, slot));
            this.handle = slot.get(P, 0);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        this.alpha = arena.allocate(ValueLayout.JAVA_FLOAT);
        this.beta = arena.allocate(ValueLayout.JAVA_FLOAT);
        this.biasSlot = arena.allocate(P);
    }

    String library() {
        return library;
    }

    /** "cuBLASLt via java.lang.foreign (libcublasLt.so.13, 32 MiB workspace)". */
    @Override
    public String binding() {
        return "cuBLASLt via java.lang.foreign (" + library + ", " + (workspace == null ? 0 : workspace.bytes() >> 20)
                + " MiB workspace)";
    }

    /** Plans made so far on this handle (tests). */
    int planCount() {
        return plans.size();
    }

    /**
     * Queues C = alpha·op(A)·op(B) + beta·C (+ bias[m] per row of the column-major C when bias is
     * not null) per {@code g}: A and B of dtype {@code ab}, C of {@code cd} (equal, or F32 with
     * 16-bit A/B), bias of dtype {@code cd}.
     */
    @Override
    public void matmul(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias,
                       float alphaValue, float betaValue) {
        Plan plan = plan(g, ab, cd, a, b, c, bias);
        alpha.set(ValueLayout.JAVA_FLOAT, 0, alphaValue);
        beta.set(ValueLayout.JAVA_FLOAT, 0, betaValue);
        MemorySegment cPtr = MemorySegment.ofAddress(c.address());
        long wsBytes = workspace == null ? 0 : workspace.bytes();
        MemorySegment ws = workspace == null ? MemorySegment.NULL : MemorySegment.ofAddress(workspace.address());
        int status;
        try {  // invokeExact: no boxing or argument spreading on the per-step path
            if (bias != null) {
                biasSlot.set(P, 0, MemorySegment.ofAddress(bias.address()));
                int rc = (int) fn.descSet().invokeExact(plan.desc(), DESC_BIAS_POINTER, biasSlot, P.byteSize());
                check("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", rc);
            }
            status = (int) fn.matmul().invokeExact(handle, plan.desc(), alpha, MemorySegment.ofAddress(a.address()), plan.aLayout(),
                    MemorySegment.ofAddress(b.address()), plan.bLayout(), beta, cPtr, plan.cLayout(), cPtr, plan.cLayout(),
                    plan.algo(), ws, wsBytes, stream);
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("cuBLASLt call failed: " + t, t);
        }
        if (status != 0) {
            check("cublasLtMatmul(" + describe(plan.key()) + ")", status);
        }
    }

    @Override
    public void prepare(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias) {
        plan(g, ab, cd, a, b, c, bias);
    }

    private Plan plan(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias) {
        if (closed) {
            throw new IllegalStateException("cuBLASLt handle is closed");
        }
        if (ab != cd && cd != DType.F32) {
            throw new IllegalArgumentException("cuBLASLt here: C must be " + ab + " or F32 for " + ab + " inputs, got " + cd);
        }
        int align = alignment(a.address(), b.address(), c.address(), bias == null ? 0 : bias.address());
        PlanKey key = new PlanKey(g, ab, cd, bias != null, align);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = makePlan(key);
            plans.put(key, plan);
        }
        return plan;
    }

    /** The largest power of two ≤ 256 that divides every non-zero address. */
    static int alignment(long... addresses) {
        int align = MAX_ALIGNMENT;
        for (long a : addresses) {
            if (a != 0) {
                align = (int) Math.min(align, Long.lowestOneBit(a));
            }
        }
        return align;
    }

    /** Rows and columns of op's operand as stored (column-major): A is m×k after op, B is k×n. */
    static long[] storedShape(int trans, long rowsAfterOp, long colsAfterOp) {
        return trans == CublasGemm.OP_N ? new long[] {rowsAfterOp, colsAfterOp} : new long[] {colsAfterOp, rowsAfterOp};
    }

    static String describe(PlanKey k) {
        return k.g() + ", " + k.ab() + " -> " + k.cd() + (k.bias() ? ", bias epilogue" : "") + ", " + k.alignment() + "-byte aligned";
    }

    private Plan makePlan(PlanKey k) {
        CublasGemm g = k.g();
        List<MemorySegment> made = new ArrayList<>();
        try {
            MemorySegment slot = arena.allocate(P);
            check("cublasLtMatmulDescCreate", call(fn.descCreate(), slot, CublasGemm.COMPUTE_32F, CUDA_R_32F));
            MemorySegment desc = slot.get(P, 0);
            made.add(desc);
            setDesc(desc, DESC_TRANSA, g.transa());
            setDesc(desc, DESC_TRANSB, g.transb());
            setDesc(desc, DESC_EPILOGUE, k.bias() ? EPILOGUE_BIAS : EPILOGUE_DEFAULT);
            long[] as = storedShape(g.transa(), g.m(), g.k());
            long[] bs = storedShape(g.transb(), g.k(), g.n());
            MemorySegment aL = layout(CublasGemm.cudaDataType(k.ab()), as[0], as[1], g.lda());
            made.add(aL);
            MemorySegment bL = layout(CublasGemm.cudaDataType(k.ab()), bs[0], bs[1], g.ldb());
            made.add(bL);
            MemorySegment cL = layout(CublasGemm.cudaDataType(k.cd()), g.m(), g.n(), g.ldc());
            made.add(cL);
            MemorySegment algo = arena.allocate(ALGO_BYTES, 8);
            String cacheKey = device + " | " + describe(k) + " | workspace " + (workspace == null ? 0 : workspace.bytes());
            byte[] cached = ALGOS.get(cacheKey);
            long needed;
            if (cached != null) {
                MemorySegment.copy(cached, 0, algo, ValueLayout.JAVA_BYTE, 0, ALGO_BYTES);
                needed = ByteUtil.getLong(cached, ALGO_BYTES);
            } else {
                needed = heuristic(desc, aL, bL, cL, k, algo);
                byte[] store = new byte[ALGO_BYTES + 8];
                MemorySegment.copy(algo, ValueLayout.JAVA_BYTE, 0, store, 0, ALGO_BYTES);
                ByteUtil.putLong(store, ALGO_BYTES, needed);
                ALGOS.put(cacheKey, store);
            }
            return new Plan(k, desc, aL, bL, cL, algo, needed);
        } catch (RuntimeException e) {
            for (int i = made.size() - 1; i >= 0; i--) {
                call(i == 0 ? fn.descDestroy() : fn.layoutDestroy(), made.get(i));
            }
            throw e;
        }
    }

    private void setDesc(MemorySegment desc, int attr, int value) {
        MemorySegment v = arena.allocateFrom(I, value);
        check("cublasLtMatmulDescSetAttribute(" + attr + ")", call(fn.descSet(), desc, attr, v, I.byteSize()));
    }

    private MemorySegment layout(int type, long rows, long cols, long ld) {
        MemorySegment slot = arena.allocate(P);
        check("cublasLtMatrixLayoutCreate(type " + type + ", " + rows + "x" + cols + ", ld " + ld + ")",
                call(fn.layoutCreate(), slot, type, rows, cols, ld));
        return slot.get(P, 0);
    }

    /** Asks the heuristic for the plan's algorithms; copies the first into {@code algo}; returns its workspace need. */
    private long heuristic(MemorySegment desc, MemorySegment aL, MemorySegment bL, MemorySegment cL, PlanKey k, MemorySegment algo) {
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment slot = tmp.allocate(P);
            check("cublasLtMatmulPreferenceCreate", call(fn.prefCreate(), slot));
            MemorySegment pref = slot.get(P, 0);
            try {
                long wsBytes = workspace == null ? 0 : workspace.bytes();
                check("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)", call(fn.prefSet(), pref,
                        PREF_MAX_WORKSPACE_BYTES, tmp.allocateFrom(J, wsBytes), J.byteSize()));
                check("cublasLtMatmulPreferenceSetAttribute(REDUCTION_SCHEME_MASK)", call(fn.prefSet(), pref,
                        PREF_REDUCTION_SCHEME_MASK, tmp.allocateFrom(I, DETERMINISTIC_REDUCTIONS), I.byteSize()));
                for (int attr : new int[] {PREF_MIN_ALIGNMENT_A, PREF_MIN_ALIGNMENT_B, PREF_MIN_ALIGNMENT_C, PREF_MIN_ALIGNMENT_D}) {
                    check("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT " + attr + ")", call(fn.prefSet(), pref, attr,
                            tmp.allocateFrom(I, k.alignment()), I.byteSize()));
                }
                MemorySegment results = tmp.allocate((long) HEURISTIC_BYTES * REQUESTED_ALGOS, 8);
                MemorySegment returned = tmp.allocate(I);
                check("cublasLtMatmulAlgoGetHeuristic(" + describe(k) + ")", call(fn.heuristic(), handle, desc, aL, bL, cL, cL, pref,
                        REQUESTED_ALGOS, results, returned));
                int count = returned.get(I, 0);
                for (int i = 0; i < count; i++) {
                    long off = (long) i * HEURISTIC_BYTES;
                    int state = results.get(I, off + HEURISTIC_STATE_OFFSET);
                    long needed = results.get(J, off + HEURISTIC_WORKSPACE_OFFSET);
                    if (state == 0 && needed <= wsBytes) {
                        MemorySegment.copy(results, off, algo, 0, ALGO_BYTES);
                        return needed;
                    }
                }
                throw new IllegalStateException("cuBLASLt has no algorithm for " + describe(k) + " with a " + wsBytes
                        + "-byte workspace (the heuristic returned " + count + ")");
            } finally {
                call(fn.prefDestroy(), pref);
            }
        }
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException("cuBLASLt has no symbol " + name));
    }

    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException("cuBLASLt call failed: " + t, t);
        }
    }

    /** cublasStatus_t names of the codes cuBLASLt returns. */
    static String statusName(int status) {
        return switch (status) {
            case 0 -> "CUBLAS_STATUS_SUCCESS";
            case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
            case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
            case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
            case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
            case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
            case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
            default -> "cublasStatus_t " + status;
        };
    }

    private static void check(String what, int status) {
        if (status != 0) {
            throw new IllegalStateException(what + " returned " + statusName(status));
        }
    }

    /** Destroys every plan's descriptor and layouts, then the handle (not the workspace: the caller owns it). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (Plan p : plans.values()) {
                call(fn.layoutDestroy(), p.aLayout());
                call(fn.layoutDestroy(), p.bLayout());
                call(fn.layoutDestroy(), p.cLayout());
                call(fn.descDestroy(), p.desc());
            }
            plans.clear();
            call(fn.destroy(), handle);
        } finally {
            arena.close();
        }
    }

    /** Little-endian long in a byte array (the algorithm cache's workspace field). */
    private static final class ByteUtil {
        static long getLong(byte[] b, int off) {
            return MemorySegment.ofArray(b).get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        }

        static void putLong(byte[] b, int off, long v) {
            MemorySegment.ofArray(b).set(ValueLayout.JAVA_LONG_UNALIGNED, off, v);
        }
    }
}
