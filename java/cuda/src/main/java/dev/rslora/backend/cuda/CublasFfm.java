package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The {@code java.lang.foreign} binding of {@link CublasApi}: the few functions used
 * (cublasCreate_v2, cublasSetStream_v2, cublasGemmEx, cublasDestroy_v2) have the same C ABI in
 * libcublas.so.13 and .so.12, so this binding serves a CUDA-13-only host, where JCublas 12.6
 * ({@link CublasJcublas}, libcublas.so.12 only) cannot load. Runs on the context's stream; fp32
 * accumulation (CUBLAS_COMPUTE_32F).
 */
final class CublasFfm implements CublasApi {
    /**
     * Libraries tried in order (after {@code -Drslora.cublas.path} when set): the sonames through the
     * dynamic loader's search path, then the CUDA toolkit's default location.
     */
    static final String[] LIBRARIES = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
        "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12"};
    /** System property: an explicit path to libcublas. */
    static final String PATH_PROPERTY = "rslora.cublas.path";

    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final java.lang.foreign.AddressLayout A = ValueLayout.ADDRESS;

    private final Arena arena = Arena.ofShared();
    private final String library;
    private final MethodHandle gemmEx;
    private final MethodHandle destroy;
    private final MemorySegment handle;
    private final MemorySegment one;
    private final MemorySegment zero;
    private boolean closed;

    /** Null when no libcublas loads here, else the soname that does. */
    static String findLibrary() {
        java.util.List<String> candidates = new java.util.ArrayList<>();
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.isBlank()) {
            candidates.add(explicit);
        }
        candidates.addAll(java.util.List.of(LIBRARIES));
        for (String lib : candidates) {
            try (Arena a = Arena.ofConfined()) {
                SymbolLookup.libraryLookup(lib, a);
                return lib;
            } catch (IllegalArgumentException e) {
                // try the next soname
            }
        }
        return null;
    }

    /**
     * Creates a handle bound to the stream whose raw handle is {@code streamAddress} (a cudaStream_t;
     * its context must be current on this thread); throws with the tried sonames when cuBLAS is absent.
     */
    CublasFfm(long streamAddress) {
        String lib = findLibrary();
        if (lib == null) {
            arena.close();
            throw new IllegalStateException("cuBLAS not found: none of " + String.join(", ", LIBRARIES) + " loads");
        }
        this.library = lib;
        SymbolLookup lookup = SymbolLookup.libraryLookup(lib, arena);
        Linker linker = Linker.nativeLinker();
        MethodHandle create = linker.downcallHandle(find(lookup, "cublasCreate_v2"), FunctionDescriptor.of(I, A));
        MethodHandle setStream = linker.downcallHandle(find(lookup, "cublasSetStream_v2"), FunctionDescriptor.of(I, A, A));
        this.destroy = linker.downcallHandle(find(lookup, "cublasDestroy_v2"), FunctionDescriptor.of(I, A));
        // cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
        //              computeType, algo)
        this.gemmEx = linker.downcallHandle(find(lookup, "cublasGemmEx"), FunctionDescriptor.of(I,
                A, I, I, I, I, I, A, A, I, I, A, I, I, A, A, I, I, I, I));
        this.one = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1.0f);
        this.zero = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 0.0f);
        MemorySegment slot = arena.allocate(A);
        check("cublasCreate_v2", invoke(create, slot));
        this.handle = slot.get(A, 0);
        int status = invoke(setStream, handle, MemorySegment.ofAddress(streamAddress));
        if (status != 0) {
            invoke(destroy, handle);
            arena.close();
            check("cublasSetStream_v2", status);
        }
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException("cuBLAS has no symbol " + name));
    }

    private static int invoke(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException("cuBLAS call failed: " + t, t);
        }
    }

    private static void check(String what, int status) {
        if (status != 0) {
            throw new IllegalStateException(what + " returned cublasStatus_t " + status);
        }
    }

    String library() {
        return library;
    }

    @Override
    public String binding() {
        return "java.lang.foreign (" + library + ")";
    }

    @Override
    public void gemm(CublasGemm g, DType ab, DType ct, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, float alpha, float beta) {
        if (closed) {
            throw new IllegalStateException("cuBLAS handle is closed");
        }
        int status;
        try (Arena scalars = Arena.ofConfined()) {
            MemorySegment al = alpha == 1.0f ? one : scalars.allocateFrom(ValueLayout.JAVA_FLOAT, alpha);
            MemorySegment be = beta == 0.0f ? zero : scalars.allocateFrom(ValueLayout.JAVA_FLOAT, beta);
            status = (int) gemmEx.invoke(handle, g.transa(), g.transb(), g.m(), g.n(), g.k(), al,
                    MemorySegment.ofAddress(a.address()), CublasGemm.cudaDataType(ab), g.lda(),
                    MemorySegment.ofAddress(b.address()), CublasGemm.cudaDataType(ab), g.ldb(), be,
                    MemorySegment.ofAddress(c.address()), CublasGemm.cudaDataType(ct), g.ldc(),
                    CublasGemm.COMPUTE_32F, CublasGemm.GEMM_DEFAULT);
        } catch (Throwable e) {
            throw new IllegalStateException("cublasGemmEx failed: " + e, e);
        }
        check("cublasGemmEx(" + g + ", " + ab + " -> " + ct + ")", status);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            invoke(destroy, handle);
            arena.close();
        }
    }
}
