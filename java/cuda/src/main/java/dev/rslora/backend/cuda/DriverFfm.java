package dev.rslora.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * The driver functions JCuda 12.6 does not have, from libcuda through {@code java.lang.foreign}:
 * <ul>
 *   <li>{@code cuTensorMapEncodeTiled}: a TMA descriptor (CUtensorMap, 128 bytes) of a row-major
 *       2-D tensor, for the Hopper (v3) kernels, which take them as {@code __grid_constant__} params;</li>
 *   <li>{@code cuLaunchKernelEx}: a launch with dynamic shared memory, a cluster dimension
 *       attribute and extra by-value params (the tensor maps after the params struct);</li>
 *   <li>{@code cuFuncSetAttribute}: MAX_DYNAMIC_SHARED_SIZE_BYTES, needed before a launch with more
 *       than 48 KiB of dynamic shared memory.</li>
 * </ul>
 * Functions and the CUfunction/CUstream handles are raw addresses (JCuda's objects hold the same
 * handles). Struct layouts and enum values are those of cuda.h (CUDA 12 and 13; checked by
 * {@code DriverFfmTest} against the header where one is installed). Every call returns CUresult;
 * a non-zero one throws with the function, its arguments and the result's name.
 */
final class DriverFfm implements TensorMapCache.Encoder, AutoCloseable {
    // CUtensorMapDataType
    static final int TMA_FLOAT16 = 6;
    static final int TMA_FLOAT32 = 7;
    static final int TMA_BFLOAT16 = 9;
    // CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill
    static final int TMA_INTERLEAVE_NONE = 0;
    static final int TMA_SWIZZLE_NONE = 0;
    static final int TMA_SWIZZLE_128B = 3;
    static final int TMA_L2_PROMOTION_256B = 3;
    static final int TMA_OOB_FILL_NONE = 0;
    /** sizeof(CUtensorMap); its alignment is 64 bytes in CUDA 12's header and 128 in CUDA 13's: we use 128. */
    static final int TENSOR_MAP_BYTES = 128;
    static final int TENSOR_MAP_ALIGN = 128;
    // CUfunction_attribute
    static final int FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    static final int FUNC_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14;
    // CUlaunchAttributeID
    static final int LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;
    /** CUlaunchConfig: grid xyz (0), block xyz (12), sharedMemBytes (24), hStream (32), attrs (40), numAttrs (48); 56 bytes. */
    static final int CONFIG_BYTES = 56;
    /** CUlaunchAttribute: id (0), value union (8, 64 bytes; clusterDim x, y, z at its start); 72 bytes. */
    static final int ATTRIBUTE_BYTES = 72;
    /** Dynamic shared memory a kernel may use without cuFuncSetAttribute. */
    static final int DEFAULT_DYNAMIC_SMEM = 48 << 10;

    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;
    private static final java.lang.foreign.AddressLayout P = ValueLayout.ADDRESS;

    /** An encoded CUtensorMap (its 128 bytes) and what it describes, for logs and tests. */
    record TensorMap(byte[] bytes, long base, int dtype, long inner, long outer, long rowStrideBytes, int boxInner,
                     int boxOuter, int swizzle) {
        TensorMap {
            if (bytes.length != TENSOR_MAP_BYTES) {
                throw new IllegalArgumentException("a CUtensorMap is " + TENSOR_MAP_BYTES + " bytes, got " + bytes.length);
            }
        }

        @Override
        public String toString() {
            return "TensorMap[base 0x" + Long.toHexString(base) + ", dtype " + dtype + ", " + outer + " x " + inner + ", row "
                    + rowStrideBytes + " B, box " + boxOuter + " x " + boxInner + ", swizzle " + swizzle + "]";
        }
    }

    /** Cluster dimensions of a launch (1, 1, 1: no cluster attribute). */
    record Cluster(int x, int y, int z) {
        static final Cluster NONE = new Cluster(1, 1, 1);

        Cluster {
            if (x < 1 || y < 1 || z < 1) {
                throw new IllegalArgumentException("cluster (" + x + ", " + y + ", " + z + ") must be >= 1 in each dimension");
            }
        }

        boolean none() {
            return x == 1 && y == 1 && z == 1;
        }

        /** "2x1x1" as the kernel table writes it. */
        static Cluster parse(String s) {
            String[] p = s.split("x");
            if (p.length != 3) {
                throw new IllegalArgumentException("cluster '" + s + "' is not XxYxZ");
            }
            return new Cluster(Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2]));
        }
    }

    private final Arena arena = Arena.ofShared();
    private final String library;
    private final MethodHandle encodeTiled;
    private final MethodHandle launchEx;
    private final MethodHandle funcSetAttribute;

    /** Binds the three functions from {@code library} (libcuda.so.1, or a stub's path in tests). */
    DriverFfm(String library) {
        this.library = library;
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(library, arena);
            Linker l = Linker.nativeLinker();
            // CUresult cuTensorMapEncodeTiled(CUtensorMap*, CUtensorMapDataType, cuuint32_t rank, void* globalAddress,
            //     const cuuint64_t* globalDim, const cuuint64_t* globalStrides, const cuuint32_t* boxDim,
            //     const cuuint32_t* elementStrides, interleave, swizzle, l2Promotion, oobFill)
            this.encodeTiled = l.downcallHandle(find(lookup, "cuTensorMapEncodeTiled"),
                    FunctionDescriptor.of(I, P, I, I, P, P, P, P, P, I, I, I, I));
            // CUresult cuLaunchKernelEx(const CUlaunchConfig*, CUfunction, void** kernelParams, void** extra)
            this.launchEx = l.downcallHandle(find(lookup, "cuLaunchKernelEx"), FunctionDescriptor.of(I, P, P, P, P));
            // CUresult cuFuncSetAttribute(CUfunction, CUfunction_attribute, int)
            this.funcSetAttribute = l.downcallHandle(find(lookup, "cuFuncSetAttribute"), FunctionDescriptor.of(I, P, I, I));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    String library() {
        return library;
    }

    /** cuTensorMapDataType of a 16-bit or f32 storage dtype. */
    static int tmaType(dev.rslora.tensor.DType t) {
        return switch (t) {
            case BF16 -> TMA_BFLOAT16;
            case F16 -> TMA_FLOAT16;
            case F32 -> TMA_FLOAT32;
        };
    }

    /**
     * Why TMA cannot describe a row-major [outer, inner] tensor of {@code elementBytes} elements at
     * {@code base} with this box, or null when it can (the driver's documented rules: 16-byte aligned
     * base, row stride a multiple of 16 bytes below 2⁴⁰, dims in 1..2³², box edges in 1..256, inner box
     * bytes ≤ 128 with SWIZZLE_128B and a multiple of 16 bytes).
     */
    static String refusal(long base, long inner, long outer, long rowStrideBytes, int elementBytes, int boxInner, int boxOuter,
                          int swizzle) {
        if ((base & 15) != 0) {
            return "base 0x" + Long.toHexString(base) + " is not 16-byte aligned";
        }
        if (inner < 1 || outer < 1 || inner > (1L << 32) || outer > (1L << 32)) {
            return "dims " + outer + " x " + inner + " outside 1..2^32";
        }
        if (rowStrideBytes % 16 != 0 || rowStrideBytes < inner * elementBytes || rowStrideBytes >= (1L << 40)) {
            return "row stride " + rowStrideBytes + " bytes is not a multiple of 16 at least the row's " + inner * elementBytes
                    + " bytes (below 2^40)";
        }
        if (boxInner < 1 || boxInner > 256 || boxOuter < 1 || boxOuter > 256) {
            return "box " + boxOuter + " x " + boxInner + " outside 1..256";
        }
        long boxBytes = (long) boxInner * elementBytes;
        if (boxBytes % 16 != 0) {
            return "inner box of " + boxBytes + " bytes is not a multiple of 16";
        }
        if (swizzle == TMA_SWIZZLE_128B && boxBytes > 128) {
            return "inner box of " + boxBytes + " bytes exceeds the 128-byte swizzle span";
        }
        return null;
    }

    /**
     * Encodes the TMA descriptor of a row-major [outer, inner] tensor at {@code base} (dims given
     * innermost first, as TMA wants them), element strides 1, no interleave, L2 promotion 256 B,
     * out-of-bounds elements read as zero. Throws IllegalArgumentException with {@link #refusal}'s
     * reason before calling the driver, IllegalStateException when the driver refuses.
     */
    @Override
    public TensorMap encode(int dtype, int elementBytes, long base, long inner, long outer, long rowStrideBytes, int boxInner,
                            int boxOuter, int swizzle) {
        String why = refusal(base, inner, outer, rowStrideBytes, elementBytes, boxInner, boxOuter, swizzle);
        if (why != null) {
            throw new IllegalArgumentException("cannot describe the tensor for TMA: " + why);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment map = a.allocate(TENSOR_MAP_BYTES, TENSOR_MAP_ALIGN);
            MemorySegment dims = a.allocateFrom(J, inner, outer);
            MemorySegment strides = a.allocateFrom(J, rowStrideBytes);   // rank − 1 entries: the stride of dim 1
            MemorySegment box = a.allocateFrom(I, boxInner, boxOuter);
            MemorySegment elementStrides = a.allocateFrom(I, 1, 1);
            int rc = call(encodeTiled, map, dtype, 2, MemorySegment.ofAddress(base), dims, strides, box, elementStrides,
                    TMA_INTERLEAVE_NONE, swizzle, TMA_L2_PROMOTION_256B, TMA_OOB_FILL_NONE);
            check(rc, "cuTensorMapEncodeTiled(dtype " + dtype + ", base 0x" + Long.toHexString(base) + ", " + outer + " x " + inner
                    + ", row " + rowStrideBytes + " B, box " + boxOuter + " x " + boxInner + ", swizzle " + swizzle + ")");
            return new TensorMap(map.toArray(ValueLayout.JAVA_BYTE), base, dtype, inner, outer, rowStrideBytes, boxInner, boxOuter,
                    swizzle);
        }
    }

    /** cuFuncSetAttribute(function, attribute, value). */
    void setAttribute(long function, int attribute, int value) {
        check(call(funcSetAttribute, MemorySegment.ofAddress(function), attribute, value),
                "cuFuncSetAttribute(0x" + Long.toHexString(function) + ", " + attribute + ", " + value + ")");
    }

    /**
     * Queues {@code function} on {@code stream} through cuLaunchKernelEx: grid (x, y, z), 1-D blocks
     * of {@code threads}, {@code smemBytes} of dynamic shared memory, a cluster attribute unless the
     * cluster is 1×1×1; kernel params = the params struct's bytes, then each tensor map's 128 bytes,
     * each as one by-value parameter (the driver copies them at the call).
     */
    void launch(long function, LaunchGeometry.Grid grid, int threads, int smemBytes, Cluster cluster, long stream, byte[] params,
                List<TensorMap> maps) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cfg = a.allocate(CONFIG_BYTES, 8);
            cfg.set(I, 0, grid.x());
            cfg.set(I, 4, grid.y());
            cfg.set(I, 8, grid.z());
            cfg.set(I, 12, threads);
            cfg.set(I, 16, 1);
            cfg.set(I, 20, 1);
            cfg.set(I, 24, smemBytes);
            cfg.set(P, 32, MemorySegment.ofAddress(stream));
            if (cluster.none()) {
                cfg.set(P, 40, MemorySegment.NULL);
                cfg.set(I, 48, 0);
            } else {
                MemorySegment attr = a.allocate(ATTRIBUTE_BYTES, 8);
                attr.set(I, 0, LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
                attr.set(I, 8, cluster.x());
                attr.set(I, 12, cluster.y());
                attr.set(I, 16, cluster.z());
                cfg.set(P, 40, attr);
                cfg.set(I, 48, 1);
            }
            MemorySegment args = a.allocate(P, 1 + maps.size());
            MemorySegment p = a.allocate(Math.max(1, params.length), 16);
            MemorySegment.copy(params, 0, p, ValueLayout.JAVA_BYTE, 0, params.length);
            args.setAtIndex(P, 0, p);
            for (int i = 0; i < maps.size(); i++) {
                MemorySegment m = a.allocate(TENSOR_MAP_BYTES, TENSOR_MAP_ALIGN);
                MemorySegment.copy(maps.get(i).bytes(), 0, m, ValueLayout.JAVA_BYTE, 0, TENSOR_MAP_BYTES);
                args.setAtIndex(P, i + 1, m);
            }
            int rc = call(launchEx, cfg, MemorySegment.ofAddress(function), args, MemorySegment.NULL);
            check(rc, "cuLaunchKernelEx(0x" + Long.toHexString(function) + ", grid " + grid + ", " + threads + " threads, "
                    + smemBytes + " B dynamic smem, cluster " + cluster + ", " + maps.size() + " tensor maps)");
        }
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException("the CUDA driver has no " + name
                + " (a driver older than CUDA 12.0?)"));
    }

    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException("CUDA driver call failed: " + t, t);
        }
    }

    /** CUresult names of the codes these three calls return. */
    static String resultName(int rc) {
        return switch (rc) {
            case 0 -> "CUDA_SUCCESS";
            case 1 -> "CUDA_ERROR_INVALID_VALUE";
            case 2 -> "CUDA_ERROR_OUT_OF_MEMORY";
            case 3 -> "CUDA_ERROR_NOT_INITIALIZED";
            case 201 -> "CUDA_ERROR_INVALID_CONTEXT";
            case 400 -> "CUDA_ERROR_INVALID_HANDLE";
            case 701 -> "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
            case 801 -> "CUDA_ERROR_NOT_SUPPORTED";
            case 912 -> "CUDA_ERROR_INVALID_CLUSTER_SIZE";
            default -> "CUresult " + rc;
        };
    }

    private static void check(int rc, String what) {
        if (rc != 0) {
            throw new IllegalStateException(what + " returned " + resultName(rc));
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
